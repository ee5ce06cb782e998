/**
 * The attestation policy's JSON Schema (draft 2020-12), version 1: the one
 * description of what a policy document may hold. `parsePolicy` (policy.ts)
 * validates documents against this object with a small interpreter of the
 * keywords used here, so the schema and the validator cannot drift apart;
 * `policySchemaJson()` gives the same object as JSON text for editors and
 * other tools.
 *
 * A few rules a schema cannot state well are checked in policy.ts after the
 * schema (each with its JSON path): SHA-1 values only when `sha1` is true,
 * 16-bit parts of firmware versions, `from` ≤ `to` in firmware ranges.
 */
import { EV } from './eventlog.js';

/** Hash banks by their policy names, with their digest sizes (Part 2 §6.3, TPM_ALG_ID). */
export const POLICY_BANKS = {
  sha1: 20,
  sha256: 32,
  sha384: 48,
  sha512: 64,
  sm3_256: 32,
  sha3_256: 32,
  sha3_384: 48,
  sha3_512: 64,
} as const;

export type PolicyBankName = keyof typeof POLICY_BANKS;

const BANK_NAMES = Object.keys(POLICY_BANKS) as PolicyBankName[];

/** `^[0-9a-fA-F]{2n}$` for a bank's digests. */
const hexOf = (bank: PolicyBankName): string => `^[0-9a-fA-F]{${2 * POLICY_BANKS[bank]}}$`;

/** A digest qualified by its bank: `sha256:<64 hex digits>`. */
const QUALIFIED_DIGEST = `^(?:${BANK_NAMES.map((b) => `${b}:[0-9a-fA-F]{${2 * POLICY_BANKS[b]}}`).join('|')})$`;

/** Event type names as eventTypeName prints them (`EV_EFI_ACTION`), or `EV_0x` and eight hex digits. */
const EVENT_TYPE = `^EV_(?:${Object.keys(EV).join('|')}|0x[0-9a-fA-F]{8})$`;

function perBank(def: (bank: PolicyBankName) => string): Record<string, { readonly $ref: string }> {
  return Object.fromEntries(BANK_NAMES.map((b) => [b, { $ref: `#/$defs/${def(b)}` }]));
}

const bankDefs = Object.fromEntries(
  BANK_NAMES.flatMap((b) => [
    [`digest-${b}`, { title: `a ${b} digest (${2 * POLICY_BANKS[b]} hex digits)`, type: 'string', pattern: hexOf(b) }],
    [
      `pcr-values-${b}`,
      {
        title: `${b} PCR values: PCR index → allowed value(s)`,
        type: 'object',
        propertyNames: { $ref: '#/$defs/pcr-index' },
        minProperties: 1,
        additionalProperties: {
          title: `a ${b} PCR value (${2 * POLICY_BANKS[b]} hex digits), or a list of allowed values`,
          type: ['string', 'array'],
          pattern: hexOf(b),
          minItems: 1,
          maxItems: 4096,
          items: { $ref: `#/$defs/digest-${b}` },
        },
      },
    ],
    [`digest-list-${b}`, { title: `${b} digests`, type: 'array', maxItems: 100_000, items: { $ref: `#/$defs/digest-${b}` } }],
  ]),
);

/**
 * The schema. Every object closes its properties (`additionalProperties:
 * false`): an unknown field is an error, so a typo never silently drops a rule.
 */
export const POLICY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:trustroot:attestation-policy:1',
  title: 'trustroot attestation policy',
  description:
    'Rules a device’s TPM evidence must meet: PCR values per bank, measured-boot event-log rules, IMA allow/deny lists, TPM type and EK chain, firmware versions, clock and SHA-1 handling. Each rule yields one check in the verdict.',
  type: 'object',
  additionalProperties: false,
  required: ['version'],
  properties: {
    version: { title: 'the policy format version', const: 1 },
    name: { title: 'a name for people', type: 'string', minLength: 1, maxLength: 200 },
    description: { title: 'a description for people', type: 'string', maxLength: 10_000 },
    missing: { $ref: '#/$defs/missing', description: 'Outcome of a rule whose evidence was not given (default fail); each section may override it.' },
    sha1: { title: 'whether SHA-1 banks and digests count as evidence', type: 'boolean', description: 'Default false: SHA-1 PCR banks, logs and rules are refused.' },
    clock: {
      title: 'clock rules',
      type: 'object',
      additionalProperties: false,
      properties: {
        unsafe: { $ref: '#/$defs/severity', description: 'Outcome when the quote’s clockInfo has safe = 0 (a power loss without Shutdown); default warn.' },
      },
    },
    pcrs: {
      title: 'required PCR values per bank',
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: perBank((b) => `pcr-values-${b}`),
    },
    eventLog: {
      title: 'measured-boot event-log rules',
      type: 'object',
      additionalProperties: false,
      properties: {
        missing: { $ref: '#/$defs/missing' },
        secureBoot: { title: 'the Secure Boot state required', enum: ['enabled', 'any'] },
        bootChain: {
          title: 'allowed boot-chain digests (PCR 4 applications) per bank',
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: perBank((b) => `digest-list-${b}`),
        },
        forbiddenEvents: { title: 'events that must not be in the log', type: 'array', maxItems: 1000, items: { $ref: '#/$defs/event-matcher' } },
        kernelCommandLine: {
          title: 'kernel command-line rules',
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            forbidden: { title: 'parameter patterns no command line may hold', type: 'array', maxItems: 1000, items: { $ref: '#/$defs/parameter-pattern' } },
            required: { title: 'parameter patterns every command line must hold', type: 'array', maxItems: 1000, items: { $ref: '#/$defs/parameter-pattern' } },
          },
        },
      },
    },
    ima: {
      title: 'IMA measurement-list rules',
      type: 'object',
      additionalProperties: false,
      properties: {
        missing: { $ref: '#/$defs/missing' },
        allow: {
          title: 'allowed digests by path; a path not listed fails',
          type: 'object',
          maxProperties: 1_000_000,
          propertyNames: { title: 'a measured path or event name', type: 'string', minLength: 1, maxLength: 4096 },
          additionalProperties: { title: 'the digests allowed for this path', type: 'array', minItems: 1, maxItems: 64, items: { $ref: '#/$defs/ima-digest' } },
        },
        exclude: { title: 'paths not held to the allowlist', type: 'array', maxItems: 10_000, items: { $ref: '#/$defs/path-pattern' } },
        deny: { title: 'digests refused anywhere', type: 'array', maxItems: 1_000_000, items: { $ref: '#/$defs/ima-digest' } },
        violations: { $ref: '#/$defs/severity', description: 'Outcome when covered entries include violations (ToMToU, open-writers); default warn.' },
      },
    },
    tpm: {
      title: 'TPM type and identity rules',
      type: 'object',
      additionalProperties: false,
      properties: {
        missing: { $ref: '#/$defs/missing' },
        minimumType: {
          title: 'the least TPM type accepted',
          description: 'Ordered discrete > integrated > firmware > virtual > software.',
          enum: ['discrete', 'integrated', 'firmware', 'virtual', 'software'],
        },
        allowUnknownType: { title: 'whether a TPM of unknown type passes the type rule', type: 'boolean' },
        ekChain: {
          title: 'the EK identity required',
          description: 'verified: the EK certificate chains to a configured root and certifies this EK; pre-registered: that, or an EK enrolled beforehand; none: no requirement.',
          enum: ['verified', 'pre-registered', 'none'],
        },
      },
    },
    firmware: {
      title: 'TPM firmware-version rules',
      type: 'object',
      additionalProperties: false,
      properties: {
        missing: { $ref: '#/$defs/missing' },
        minimum: {
          title: 'the least firmware version per manufacturer (TCG vendor ID, or * for any other)',
          type: 'object',
          maxProperties: 256,
          propertyNames: { $ref: '#/$defs/manufacturer-or-any' },
          additionalProperties: { $ref: '#/$defs/firmware-version' },
        },
        deny: {
          title: 'firmware versions refused',
          type: 'array',
          maxItems: 10_000,
          items: {
            title: 'a refused version or range (inclusive)',
            type: 'object',
            additionalProperties: false,
            anyOf: [{ required: ['version'] }, { required: ['from'] }, { required: ['to'] }],
            properties: {
              manufacturer: { $ref: '#/$defs/manufacturer' },
              version: { $ref: '#/$defs/firmware-version' },
              from: { $ref: '#/$defs/firmware-version' },
              to: { $ref: '#/$defs/firmware-version' },
              reason: { title: 'why (an advisory, a CVE)', type: 'string', maxLength: 500 },
            },
          },
        },
      },
    },
  },
  $defs: {
    missing: { title: 'fail or not-performed', enum: ['fail', 'not-performed'] },
    severity: { title: 'pass, warn or fail', enum: ['pass', 'warn', 'fail'] },
    'pcr-index': { title: 'a PCR index 0–23', type: 'string', pattern: '^(?:[0-9]|1[0-9]|2[0-3])$' },
    'qualified-digest': { title: 'a digest as <bank>:<hex> (e.g. sha256:…)', type: 'string', pattern: QUALIFIED_DIGEST },
    'event-matcher': {
      title: 'an event matcher: every field given must match',
      type: 'object',
      additionalProperties: false,
      anyOf: [{ required: ['type'] }, { required: ['pcr'] }, { required: ['text'] }, { required: ['digest'] }],
      properties: {
        type: { title: 'an event type name (EV_EFI_ACTION, …, or EV_0x followed by 8 hex digits)', type: 'string', pattern: EVENT_TYPE },
        pcr: { title: 'a PCR index 0–23', type: 'integer', minimum: 0, maximum: 23 },
        text: { $ref: '#/$defs/text-pattern' },
        digest: { $ref: '#/$defs/qualified-digest' },
        reason: { title: 'why it is forbidden', type: 'string', maxLength: 500 },
      },
    },
    'text-pattern': { title: 'a text pattern (* any characters, ? one character)', type: 'string', minLength: 1, maxLength: 1024 },
    'parameter-pattern': { title: 'a kernel parameter pattern without spaces (* any characters, ? one character)', type: 'string', minLength: 1, maxLength: 256, pattern: '^\\S+$' },
    'path-pattern': { title: 'a path prefix, or a glob (* within a segment, ** across segments, ? one character)', type: 'string', minLength: 1, maxLength: 4096 },
    'ima-digest': { title: 'a file digest as <alg>:<hex> or bare hex', type: 'string', pattern: '^(?:[a-z0-9_-]{1,32}:)?(?:[0-9a-fA-F]{2}){16,64}$' },
    manufacturer: { title: 'a TCG vendor ID (1–4 characters, e.g. IFX, NTC, INTC)', type: 'string', pattern: '^[A-Za-z0-9]{1,4}$' },
    'manufacturer-or-any': { title: 'a TCG vendor ID (1–4 characters) or *', type: 'string', pattern: '^(?:\\*|[A-Za-z0-9]{1,4})$' },
    'firmware-version': {
      title: 'a firmware version: up to four 16-bit parts a.b.c.d, or 0x and up to 16 hex digits',
      type: 'string',
      pattern: '^(?:0x[0-9a-fA-F]{1,16}|[0-9]{1,5}(?:\\.[0-9]{1,5}){0,3})$',
    },
    ...bankDefs,
  },
} as const;

/** The schema as JSON text (2-space indentation), e.g. to write `attestation-policy.schema.json` for an editor. */
export function policySchemaJson(): string {
  return `${JSON.stringify(POLICY_SCHEMA, null, 2)}\n`;
}
