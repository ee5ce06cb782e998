/**
 * The attestation policy: a declarative, versioned JSON document of the rules
 * a device's TPM evidence must meet, and its evaluation into a Verdict with
 * one check per rule.
 *
 * Reading a policy (`parsePolicy`): JSON text or an already parsed value is
 * validated against POLICY_SCHEMA (policy.schema.ts, JSON Schema 2020-12) by
 * a small interpreter of exactly the keywords that schema uses, then by the
 * few rules a schema cannot state (SHA-1 digests only when `sha1` is true,
 * 16-bit firmware-version parts, ordered ranges). Any problem is a
 * PolicyError (`evidence.policy`) listing every issue with its JSON path
 * (`$.eventLog.forbiddenEvents[2].type`) and JSON Pointer; nothing else is
 * ever thrown for a bad document, and reading is bounded by the schema
 * (string lengths, list sizes, a fixed depth).
 *
 * Evaluating (`evaluatePolicy`): pure, no I/O, no clock. What the evidence
 * says is trusted only as far as it is bound to a verified quote:
 *  - PCR values count only from a quote whose verdict was accepted with a
 *    passing `quote.pcr-digest`, only for its signed selection, and only
 *    after they are re-hashed here to the signed pcrDigest (so values that
 *    are not the quoted ones are never used); SHA-1 banks count only when
 *    the policy allows SHA-1;
 *  - an event-log rule uses the log only for PCRs whose replay equals such a
 *    quoted value (the log's types and data are claims: Secure Boot state
 *    from digest-verified variable data, boot chain from every PCR 4
 *    measurement whatever its type, command lines whose text hashes to their
 *    digests — events.ts);
 *  - IMA entries count only when the replay was accepted and its running
 *    PCR values equal the quoted ones.
 * A rule whose evidence is absent yields `not-performed` or `fail` as the
 * policy says (`missing`, default fail); present but unverifiable evidence
 * always fails.
 *
 * Check ids (reasons in each function's comment): policy.quote, policy.sha1,
 * policy.clock, policy.pcr, policy.secure-boot, policy.boot-chain,
 * policy.forbidden-event, policy.kernel-cmdline, policy.ima.replay,
 * policy.ima.deny, policy.ima.allow, policy.ima.violations, policy.tpm.type,
 * policy.tpm.ek-chain, policy.firmware.minimum, policy.firmware.deny. Each
 * check's detail starts with the JSON path of its rule.
 */
import { TPM_ALG, TPM_ST } from '../tpm/constants.js';
import { digestSize, hash, isHashSupported } from '../tpm/crypto/hash.js';
import { EvidenceError } from '../tpm/errors.js';
import { pcrIndices } from '../tpm/pcr.js';
import type { TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import type { AkPolicy } from './ak.js';
import type { ChainResult, EkCertificateVerification } from './chain.js';
import type { ClassificationProfile, TpmAssurance, TpmClassification, TpmType } from './classify.js';
import type { ClockPolicy, Severity } from './clock.js';
import { bankName, eventTypeName, initialPcrValue, replay as replayLog, type EventLog, type Replay } from './eventlog.js';
import { bootChain, decodeEvents, kernelCommandLines, secureBootState, type DecodedEvent } from './events.js';
import { evaluateImaAllowlist, type ImaFinding, type ImaReplayResult } from './ima.js';
import { POLICY_SCHEMA, type PolicyBankName } from './policy.schema.js';
import type { PcrValues, QuoteVerdict } from './quote.js';
import { check, failures, fail, pass, verdict, warn, type Check, type Outcome, type Verdict } from './verdict.js';

// ---------------------------------------------------------------------------
// The document

/** What a rule yields when its evidence was not given. */
export type MissingEvidence = 'fail' | 'not-performed';

/** A TPM type a minimum can name (classify.ts; `unknown` is ruled by allowUnknownType). */
export type MinimumTpmType = Exclude<TpmType, 'unknown'>;

/** The EK identity a policy requires: the least TpmAssurance accepted (`none`: claimed is enough). */
export type EkChainRequirement = 'verified' | 'pre-registered' | 'none';

/** PCR index (as a decimal string, "0".."23") → the allowed value, or list of allowed values, as hex. */
export type PcrRule = Readonly<Record<string, string | readonly string[]>>;

/**
 * An event matcher: an event matches when every field given matches.
 * `type`: the claimed type's name (eventTypeName: `EV_EFI_ACTION`, `EV_0x…`) —
 * a claim the log's writer chooses, so pair it with text or digest;
 * `pcr`: the PCR index; `text`: a pattern (`*`, `?`) over the event's text —
 * an action string, an EV_IPL string (whole, and grub's text after its
 * prefix), a UEFI variable's name, an image's device-path file, a firmware
 * blob's description, the S-CRTM version, a POST code label; `digest`:
 * `<bank>:<hex>`, the event's digest in that bank.
 */
export interface EventMatcher {
  readonly type?: string;
  readonly pcr?: number;
  readonly text?: string;
  readonly digest?: string;
  readonly reason?: string;
}

export interface FirmwareDenyRule {
  /** TCG vendor ID; absent: any manufacturer. */
  readonly manufacturer?: string;
  /** One version, or an inclusive range with `from` and/or `to`. */
  readonly version?: string;
  readonly from?: string;
  readonly to?: string;
  readonly reason?: string;
}

/** The policy document (version 1), as JSON. POLICY_SCHEMA describes it; parsePolicy validates it. */
export interface PolicyDocument {
  readonly version: 1;
  readonly name?: string;
  readonly description?: string;
  /** Outcome of rules whose evidence was not given (default `fail`); a section's own `missing` wins. */
  readonly missing?: MissingEvidence;
  /** Whether SHA-1 PCR banks and SHA-1 rule digests count (default false). */
  readonly sha1?: boolean;
  readonly clock?: {
    /** Outcome of `policy.clock` when the quote's clockInfo has safe = 0 (default warn). */
    readonly unsafe?: Severity;
  };
  /** Required PCR values: bank → PCR → allowed value(s). */
  readonly pcrs?: Readonly<Partial<Record<PolicyBankName, PcrRule>>>;
  readonly eventLog?: {
    readonly missing?: MissingEvidence;
    /** `enabled`: the SecureBoot variable, digest-verified in a quoted PCR 7, must be 1 (default `any`). */
    readonly secureBoot?: 'enabled' | 'any';
    /** Allowed digests of every PCR 4 measurement (the boot chain's applications), per bank. */
    readonly bootChain?: Readonly<Partial<Record<PolicyBankName, readonly string[]>>>;
    readonly forbiddenEvents?: readonly EventMatcher[];
    /** Patterns (`*`, `?`) over each whitespace-separated parameter of the measured command lines. */
    readonly kernelCommandLine?: { readonly forbidden?: readonly string[]; readonly required?: readonly string[] };
  };
  readonly ima?: {
    readonly missing?: MissingEvidence;
    /** Allowed digests by path (`<alg>:<hex>` or bare hex); a path not listed fails. Absent: no allowlist. */
    readonly allow?: Readonly<Record<string, readonly string[]>>;
    /** Paths not held to the allowlist (imaPathPattern: prefix, or `*`, `**`, `?` globs). */
    readonly exclude?: readonly string[];
    /** Digests refused anywhere, excluded paths included. */
    readonly deny?: readonly string[];
    /** Outcome when covered entries include violations (default warn). */
    readonly violations?: Severity;
  };
  readonly tpm?: {
    readonly missing?: MissingEvidence;
    readonly minimumType?: MinimumTpmType;
    /** Whether an `unknown` TPM type passes (default false). */
    readonly allowUnknownType?: boolean;
    /** Default `none`. */
    readonly ekChain?: EkChainRequirement;
  };
  readonly firmware?: {
    readonly missing?: MissingEvidence;
    /** TCG vendor ID (or `*`) → least firmware version (`a.b.c.d`, 16 bits each, or `0x…`). */
    readonly minimum?: Readonly<Record<string, string>>;
    readonly deny?: readonly FirmwareDenyRule[];
  };
}

/** A validated policy: parsePolicy's result, what evaluatePolicy takes. */
export interface Policy {
  readonly kind: 'attestation-policy';
  readonly version: 1;
  readonly name: string | undefined;
  /** The validated document (a copy: later changes to the input do not reach it). */
  readonly document: PolicyDocument;
}

// ---------------------------------------------------------------------------
// Errors

/** One problem in a policy document. */
export interface PolicyIssue {
  /** JSONPath of the offending value (`$.pcrs.sha256["7"]`); long keys are shortened. */
  readonly path: string;
  /** The same place as a JSON Pointer (RFC 6901), e.g. `/pcrs/sha256/7`. */
  readonly pointer: string;
  /** The schema keyword that failed (`type`, `required`, `additionalProperties`, `pattern`, …), or `json` / `semantic`. */
  readonly keyword: string;
  readonly message: string;
}

/** The most issues one PolicyError lists (reading stops there). */
export const MAX_POLICY_ISSUES = 50;
/** The longest policy text accepted: 64 MiB (an IMA allowlist of a whole distribution fits). */
export const MAX_POLICY_TEXT = 64 * 1024 * 1024;

/** A policy document that does not validate. `path` is the first issue's; `issues` lists them all. */
export class PolicyError extends EvidenceError {
  readonly path: string;
  readonly pointer: string;
  readonly issues: readonly PolicyIssue[];
  constructor(issues: readonly PolicyIssue[]) {
    const first = issues[0] ?? { path: '$', pointer: '', keyword: 'semantic', message: 'invalid policy' };
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? 's' : ''})` : '';
    super('evidence.policy', `policy ${first.path}: ${first.message}${more}`);
    this.path = first.path;
    this.pointer = first.pointer;
    this.issues = [...issues];
  }
}

// ---------------------------------------------------------------------------
// The schema interpreter: exactly the keywords POLICY_SCHEMA uses

type Segment = string | number;
type SchemaNode = Readonly<Record<string, unknown>>;
type JsonType = 'null' | 'boolean' | 'integer' | 'number' | 'string' | 'array' | 'object' | 'other';

const ANNOTATIONS = new Set(['$schema', '$id', '$defs', '$comment', 'title', 'description', 'default', 'examples']);
const ASSERTIONS = new Set([
  '$ref',
  'type',
  'const',
  'enum',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'items',
  'minItems',
  'maxItems',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'anyOf',
]);
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_KEY_IN_PATH = 120;

function shorten(key: string): string {
  return key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}…` : key;
}

function pathOf(loc: readonly Segment[]): string {
  let s = '$';
  for (const seg of loc) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) s += `.${seg}`;
    else s += `[${JSON.stringify(shorten(seg))}]`;
  }
  return s;
}

function pointerOf(loc: readonly Segment[]): string {
  return loc.map((seg) => `/${String(typeof seg === 'string' ? shorten(seg) : seg).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'number':
      return Number.isFinite(v) ? (Number.isInteger(v) ? 'integer' : 'number') : 'other';
    case 'object': {
      if (Array.isArray(v)) return 'array';
      const proto: unknown = Object.getPrototypeOf(v);
      return proto === Object.prototype || proto === null ? 'object' : 'other';
    }
    default:
      return 'other';
  }
}

function typeMatches(actual: JsonType, wanted: string): boolean {
  return actual === wanted || (wanted === 'number' && actual === 'integer');
}

const describeType = (t: JsonType): string =>
  t === 'other' ? 'a value that is not JSON data' : t === 'null' ? 'null' : t === 'integer' ? 'an integer' : `a${/^[aeiou]/.test(t) ? 'n' : ''} ${t}`;

/** Code points of a string, counted only as far as `limit` + 1 (JSON Schema lengths count characters, not UTF-16 units). */
function codePoints(s: string, limit: number): number {
  if (s.length <= limit) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff || i === 0 || s.charCodeAt(i - 1) < 0xd800 || s.charCodeAt(i - 1) > 0xdbff) n++;
    }
    return n;
  }
  // Longer in UTF-16 units than the limit: at least half as many code points; count up to the limit only.
  let n = 0;
  for (let i = 0; i < s.length && n <= limit; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Own keys whose value is not undefined (a TypeScript-built document may carry `key: undefined`). */
function presentKeys(o: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(o).filter((k) => o[k] !== undefined);
}

class SchemaValidator {
  readonly issues: PolicyIssue[] = [];
  readonly #root: SchemaNode;
  readonly #patterns = new Map<string, RegExp>();

  constructor(root: SchemaNode) {
    this.#root = root;
  }

  get full(): boolean {
    return this.issues.length >= MAX_POLICY_ISSUES;
  }

  #issue(loc: readonly Segment[], keyword: string, message: string): void {
    if (!this.full) this.issues.push({ path: pathOf(loc), pointer: pointerOf(loc), keyword, message });
  }

  #regex(source: string): RegExp {
    let r = this.#patterns.get(source);
    if (r === undefined) {
      r = new RegExp(source, 'u');
      this.#patterns.set(source, r);
    }
    return r;
  }

  #resolve(ref: string): SchemaNode {
    const m = /^#\/\$defs\/([^/]+)$/.exec(ref);
    const defs = this.#root['$defs'] as Readonly<Record<string, SchemaNode>> | undefined;
    const target = m === null ? undefined : defs?.[m[1]!];
    if (target === undefined) throw new Error(`policy schema: unresolvable $ref ${ref}`); // a defect of POLICY_SCHEMA, caught by its tests
    return target;
  }

  /** What a failing value should have been, for messages: the schema's title. */
  #expected(schema: SchemaNode): string | undefined {
    if (typeof schema['title'] === 'string') return schema['title'];
    if (typeof schema['$ref'] === 'string') return this.#expected(this.#resolve(schema['$ref']));
    return undefined;
  }

  /** Validates `value` at `loc`; returns true when it holds (issues are recorded either way). */
  validate(schema: SchemaNode, value: unknown, loc: Segment[]): boolean {
    if (this.full) return false;
    let ok = true;
    const ref = schema['$ref'];
    if (typeof ref === 'string' && !this.validate(this.#resolve(ref), value, loc)) ok = false;
    const t = jsonType(value);
    const wanted = schema['type'];
    if (wanted !== undefined) {
      const list = (Array.isArray(wanted) ? wanted : [wanted]) as string[];
      if (!list.some((w) => typeMatches(t, w))) {
        const title = this.#expected(schema);
        const types = list.map((w) => describeType(w as JsonType)).join(' or ');
        this.#issue(loc, 'type', `expected ${types}${title !== undefined ? ` (${title})` : ''}, found ${describeType(t)}`);
        return false; // the other keywords would only repeat it
      }
    }
    if ('const' in schema && value !== schema['const']) {
      this.#issue(loc, 'const', `must be ${JSON.stringify(schema['const'])}`);
      ok = false;
    }
    const en = schema['enum'];
    if (Array.isArray(en) && !en.includes(value)) {
      this.#issue(loc, 'enum', `must be one of ${en.map((e) => JSON.stringify(e)).join(', ')}`);
      ok = false;
    }
    if (t === 'string') ok = this.#string(schema, value as string, loc) && ok;
    else if (t === 'integer' || t === 'number') ok = this.#number(schema, value as number, loc) && ok;
    else if (t === 'object') ok = this.#object(schema, value as Readonly<Record<string, unknown>>, loc) && ok;
    else if (t === 'array') ok = this.#array(schema, value as readonly unknown[], loc) && ok;
    const anyOf = schema['anyOf'];
    if (Array.isArray(anyOf) && ok) ok = this.#anyOf(schema, anyOf as SchemaNode[], value, loc);
    return ok;
  }

  #string(schema: SchemaNode, s: string, loc: Segment[]): boolean {
    const min = schema['minLength'];
    const max = schema['maxLength'];
    if (typeof max === 'number') {
      const n = codePoints(s, max);
      if (n > max) {
        this.#issue(loc, 'maxLength', `longer than ${max} characters`);
        return false;
      }
    }
    if (typeof min === 'number' && codePoints(s, min) < min) {
      this.#issue(loc, 'minLength', min === 1 ? 'must not be empty' : `shorter than ${min} characters`);
      return false;
    }
    const pattern = schema['pattern'];
    if (typeof pattern === 'string' && !this.#regex(pattern).test(s)) {
      this.#issue(loc, 'pattern', `expected ${this.#expected(schema) ?? `a string matching ${pattern}`}, found ${JSON.stringify(shorten(s))}`);
      return false;
    }
    return true;
  }

  #number(schema: SchemaNode, n: number, loc: Segment[]): boolean {
    const min = schema['minimum'];
    const max = schema['maximum'];
    if (typeof min === 'number' && n < min) {
      this.#issue(loc, 'minimum', `must be at least ${min}, found ${n}`);
      return false;
    }
    if (typeof max === 'number' && n > max) {
      this.#issue(loc, 'maximum', `must be at most ${max}, found ${n}`);
      return false;
    }
    return true;
  }

  #object(schema: SchemaNode, o: Readonly<Record<string, unknown>>, loc: Segment[]): boolean {
    let ok = true;
    const keys = presentKeys(o);
    const maxP = schema['maxProperties'];
    if (typeof maxP === 'number' && keys.length > maxP) {
      this.#issue(loc, 'maxProperties', `more than ${maxP} properties (${keys.length})`);
      return false;
    }
    const minP = schema['minProperties'];
    if (typeof minP === 'number' && keys.length < minP) {
      this.#issue(loc, 'minProperties', minP === 1 ? 'must not be empty' : `fewer than ${minP} properties`);
      ok = false;
    }
    const required = schema['required'];
    if (Array.isArray(required)) {
      for (const r of required as string[]) {
        if (o[r] === undefined) {
          this.#issue([...loc, r], 'required', 'is required');
          ok = false;
        }
      }
    }
    const props = (schema['properties'] ?? {}) as Readonly<Record<string, SchemaNode>>;
    const additional = schema['additionalProperties'];
    const names = schema['propertyNames'] as SchemaNode | undefined;
    for (const k of keys) {
      if (this.full) return false;
      const at = [...loc, k];
      if (names !== undefined && !this.validate(names, k, at)) ok = false;
      const sub = Object.hasOwn(props, k) ? props[k] : undefined;
      if (sub !== undefined) {
        if (!this.validate(sub, o[k], at)) ok = false;
      } else if (additional === false) {
        const known = Object.keys(props);
        this.#issue(at, 'additionalProperties', `unknown property ${JSON.stringify(shorten(k))}${known.length > 0 ? ` (expected ${known.join(', ')})` : ''}`);
        ok = false;
      } else if (additional !== undefined && additional !== true) {
        if (!this.validate(additional as SchemaNode, o[k], at)) ok = false;
      }
    }
    return ok;
  }

  #array(schema: SchemaNode, a: readonly unknown[], loc: Segment[]): boolean {
    const max = schema['maxItems'];
    if (typeof max === 'number' && a.length > max) {
      this.#issue(loc, 'maxItems', `more than ${max} items (${a.length})`);
      return false;
    }
    const min = schema['minItems'];
    let ok = true;
    if (typeof min === 'number' && a.length < min) {
      this.#issue(loc, 'minItems', min === 1 ? 'must not be empty' : `fewer than ${min} items`);
      ok = false;
    }
    const items = schema['items'] as SchemaNode | undefined;
    if (items !== undefined) {
      for (let i = 0; i < a.length && !this.full; i++) if (!this.validate(items, a[i], [...loc, i])) ok = false;
    }
    return ok;
  }

  #anyOf(schema: SchemaNode, branches: readonly SchemaNode[], value: unknown, loc: Segment[]): boolean {
    for (const b of branches) {
      const probe = new SchemaValidator(this.#root);
      if (probe.validate(b, value, loc)) return true;
    }
    const requiredOnly = branches.every((b) => Object.keys(b).length === 1 && Array.isArray(b['required']) && (b['required'] as unknown[]).length === 1);
    const message = requiredOnly
      ? `needs at least one of ${branches.map((b) => (b['required'] as string[])[0]).join(', ')}`
      : `matches none of the forms of ${this.#expected(schema) ?? 'this value'}`;
    this.#issue(loc, 'anyOf', message);
    return false;
  }
}

/** Every keyword of the schema must be one the interpreter knows, or it would be silently ignored. */
function assertSupported(node: unknown, where: string): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    node.forEach((n, i) => assertSupported(n, `${where}[${i}]`));
    return;
  }
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (!ANNOTATIONS.has(k) && !ASSERTIONS.has(k)) throw new Error(`policy schema: keyword ${k} at ${where} is not supported by the validator`);
    if (k === 'properties' || k === '$defs') {
      for (const [name, sub] of Object.entries(v as Record<string, unknown>)) assertSupported(sub, `${where}.${k}.${name}`);
    } else if (k === 'items' || k === 'additionalProperties' || k === 'propertyNames' || k === 'anyOf') {
      assertSupported(v, `${where}.${k}`);
    }
  }
}
assertSupported(POLICY_SCHEMA, '$');

// ---------------------------------------------------------------------------
// Reading a document

const TEXT = new TextDecoder('utf-8', { fatal: true });

function jsonIssue(message: string): PolicyError {
  return new PolicyError([{ path: '$', pointer: '', keyword: 'json', message }]);
}

/**
 * Reads policy JSON text (a string, or UTF-8 bytes; a BOM allowed) into a
 * JSON value without validating it against the schema.
 * @throws PolicyError (keyword `json`) for text that is too long, not UTF-8, or not JSON.
 */
export function readPolicyText(input: string | Uint8Array): unknown {
  let text: string;
  if (input instanceof Uint8Array) {
    if (input.length > MAX_POLICY_TEXT) throw jsonIssue(`the policy is ${input.length} bytes; at most ${MAX_POLICY_TEXT} are read`);
    try {
      text = TEXT.decode(input);
    } catch {
      throw jsonIssue('the policy is not UTF-8 text');
    }
  } else {
    if (input.length > MAX_POLICY_TEXT) throw jsonIssue(`the policy is ${input.length} characters; at most ${MAX_POLICY_TEXT} are read`);
    text = input;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // JSON.parse throws SyntaxError (with V8's position in the message); nothing else reaches here.
    throw jsonIssue(`not JSON: ${e instanceof Error ? e.message.slice(0, 200) : 'syntax error'}`);
  }
}

const FIRMWARE_PART_MAX = 0xffff;

/** A firmware version string (schema-valid) as the 64-bit TPMS_ATTEST.firmwareVersion value; undefined when a part exceeds 16 bits. */
function firmwareValue(s: string): bigint | undefined {
  if (s.startsWith('0x')) return BigInt(s);
  const parts = s.split('.').map(Number);
  if (parts.some((p) => p > FIRMWARE_PART_MAX)) return undefined;
  while (parts.length < 4) parts.push(0);
  return parts.reduce((acc, p) => (acc << 16n) | BigInt(p), 0n);
}

/** `7.85.4555.0 (0x0007005511cb0000)`: the four 16-bit parts vendors print, and the raw value. */
export function formatFirmwareVersion(v: bigint): string {
  const parts = [48n, 32n, 16n, 0n].map((s) => Number((v >> s) & 0xffffn));
  return `${parts.join('.')} (0x${v.toString(16).padStart(16, '0')})`;
}

/** The checks after the schema; `doc` has the schema's shape. */
function semanticIssues(doc: PolicyDocument): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const add = (loc: Segment[], message: string): void => {
    if (issues.length < MAX_POLICY_ISSUES) issues.push({ path: pathOf(loc), pointer: pointerOf(loc), keyword: 'semantic', message });
  };
  if (doc.sha1 !== true) {
    const why = 'SHA-1 values in a policy that refuses SHA-1 (set "sha1": true to use them)';
    if (doc.pcrs?.sha1 !== undefined) add(['pcrs', 'sha1'], why);
    if (doc.eventLog?.bootChain?.sha1 !== undefined) add(['eventLog', 'bootChain', 'sha1'], why);
    doc.eventLog?.forbiddenEvents?.forEach((m, i) => {
      if (m.digest?.startsWith('sha1:') === true) add(['eventLog', 'forbiddenEvents', i, 'digest'], why);
    });
  }
  const fw = doc.firmware;
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(fw?.minimum ?? {})) {
    if (firmwareValue(v) === undefined) add(['firmware', 'minimum', k], `version ${JSON.stringify(v)} has a part above 65535`);
    // Vendor IDs compare without case (TPM_PT_MANUFACTURER is upper case ASCII): two spellings would be two minimums for one vendor.
    if (seen.has(k.toUpperCase())) add(['firmware', 'minimum', k], `a second minimum for manufacturer ${k.toUpperCase()}`);
    seen.add(k.toUpperCase());
  }
  fw?.deny?.forEach((d, i) => {
    for (const f of ['version', 'from', 'to'] as const) {
      const v = d[f];
      if (v !== undefined && firmwareValue(v) === undefined) add(['firmware', 'deny', i, f], `version ${JSON.stringify(v)} has a part above 65535`);
    }
    if (d.version !== undefined && (d.from !== undefined || d.to !== undefined)) add(['firmware', 'deny', i], 'give either version or a from/to range, not both');
    const from = d.from === undefined ? undefined : firmwareValue(d.from);
    const to = d.to === undefined ? undefined : firmwareValue(d.to);
    if (from !== undefined && to !== undefined && from > to) add(['firmware', 'deny', i], `the range is empty: from ${d.from} is above to ${d.to}`);
  });
  return issues;
}

/**
 * A frozen deep copy of schema-valid data (plain objects, arrays, primitives;
 * keys whose value is undefined dropped): the compiled rules are made from
 * it, so it must not change afterwards.
 */
function copyJson(v: unknown): unknown {
  if (Array.isArray(v)) return Object.freeze(v.map(copyJson));
  if (v !== null && typeof v === 'object') {
    const o = v as Readonly<Record<string, unknown>>;
    // fromEntries defines own properties, so a key "__proto__" stays data.
    return Object.freeze(Object.fromEntries(presentKeys(o).map((k) => [k, copyJson(o[k])])));
  }
  return v;
}

/** The compiled rules of a policy, kept beside it. */
interface Compiled {
  readonly doc: PolicyDocument;
  readonly missing: MissingEvidence;
  readonly sha1: boolean;
  readonly unsafe: Severity;
  /** bank alg → PCR → allowed values (lower-case hex). */
  readonly pcrs: ReadonlyMap<number, ReadonlyMap<number, readonly string[]>>;
  readonly bootChain: ReadonlyMap<number, ReadonlySet<string>> | undefined;
  readonly forbidden: readonly CompiledMatcher[];
  readonly cmdForbidden: readonly Glob[];
  readonly cmdRequired: readonly Glob[];
  readonly fwMinimum: ReadonlyMap<string, bigint>;
  readonly fwDeny: readonly { readonly manufacturer?: string; readonly from: bigint; readonly to: bigint; readonly text: string; readonly reason?: string; readonly index: number }[];
}

interface Glob {
  readonly pattern: string;
  readonly test: (s: string) => boolean;
}

interface CompiledMatcher {
  readonly index: number;
  readonly rule: EventMatcher;
  readonly type?: string;
  readonly digest?: { readonly alg: number; readonly hex: string };
  readonly text?: Glob;
}

const COMPILED = new WeakMap<Policy, Compiled>();

const BANK_ALG: Readonly<Record<PolicyBankName, number>> = {
  sha1: TPM_ALG.SHA1,
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
  sm3_256: TPM_ALG.SM3_256,
  sha3_256: TPM_ALG.SHA3_256,
  sha3_384: TPM_ALG.SHA3_384,
  sha3_512: TPM_ALG.SHA3_512,
};

/**
 * A pattern over a whole string: `*` any characters (none included), `?`
 * one; everything else literal. Matching is linear in the text for each
 * segment between stars (leftmost placement is always right for `*`-only
 * globs), with no backtracking blow-up.
 */
export function globMatcher(pattern: string): (text: string) => boolean {
  const parts = pattern.split('*');
  const at = (s: string, i: number, seg: string): boolean => {
    if (i < 0 || i + seg.length > s.length) return false;
    for (let k = 0; k < seg.length; k++) {
      const c = seg.charCodeAt(k);
      if (c !== 0x3f && c !== s.charCodeAt(i + k)) return false;
    }
    return true;
  };
  if (parts.length === 1) return (s) => s.length === pattern.length && at(s, 0, pattern);
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  return (s) => {
    if (s.length < first.length + last.length || !at(s, 0, first) || !at(s, s.length - last.length, last)) return false;
    let pos = first.length;
    const end = s.length - last.length;
    for (const seg of middle) {
      let found = -1;
      if (!seg.includes('?')) {
        const i = s.indexOf(seg, pos);
        found = i >= 0 && i + seg.length <= end ? i : -1;
      } else {
        for (let i = pos; i + seg.length <= end; i++) {
          if (at(s, i, seg)) {
            found = i;
            break;
          }
        }
      }
      if (found < 0) return false;
      pos = found + seg.length;
    }
    return true;
  };
}

const glob = (pattern: string): Glob => ({ pattern, test: globMatcher(pattern) });

function compile(doc: PolicyDocument): Compiled {
  const pcrs = new Map<number, Map<number, readonly string[]>>();
  for (const [bank, rule] of Object.entries(doc.pcrs ?? {}) as [PolicyBankName, PcrRule][]) {
    const m = new Map<number, readonly string[]>();
    for (const [pcr, v] of Object.entries(rule)) m.set(Number(pcr), (typeof v === 'string' ? [v] : v).map((x) => x.toLowerCase()));
    pcrs.set(BANK_ALG[bank], new Map([...m].sort((a, b) => a[0] - b[0])));
  }
  const chain = doc.eventLog?.bootChain;
  const bootChainRules =
    chain === undefined ? undefined : new Map((Object.entries(chain) as [PolicyBankName, readonly string[]][]).map(([b, list]) => [BANK_ALG[b], new Set(list.map((x) => x.toLowerCase()))] as const));
  const forbidden = (doc.eventLog?.forbiddenEvents ?? []).map((rule, index): CompiledMatcher => {
    let type = rule.type;
    if (type !== undefined && /^EV_0x/i.test(type)) type = `EV_0x${type.slice(5).toLowerCase()}`;
    let digest: CompiledMatcher['digest'];
    if (rule.digest !== undefined) {
      const colon = rule.digest.indexOf(':');
      digest = { alg: BANK_ALG[rule.digest.slice(0, colon) as PolicyBankName], hex: rule.digest.slice(colon + 1).toLowerCase() };
    }
    return { index, rule, ...(type !== undefined ? { type } : {}), ...(digest !== undefined ? { digest } : {}), ...(rule.text !== undefined ? { text: glob(rule.text) } : {}) };
  });
  const fwMinimum = new Map(Object.entries(doc.firmware?.minimum ?? {}).map(([k, v]) => [k.toUpperCase(), firmwareValue(v)!] as const));
  const fwDeny = (doc.firmware?.deny ?? []).map((d, index) => {
    const from = d.version ?? d.from;
    const to = d.version ?? d.to;
    return {
      index,
      ...(d.manufacturer !== undefined ? { manufacturer: d.manufacturer.toUpperCase() } : {}),
      from: from === undefined ? 0n : firmwareValue(from)!,
      to: to === undefined ? (1n << 64n) - 1n : firmwareValue(to)!,
      text: d.version !== undefined ? d.version : `${d.from ?? 'any'}–${d.to ?? 'any'}`,
      ...(d.reason !== undefined ? { reason: d.reason } : {}),
    };
  });
  return {
    doc,
    missing: doc.missing ?? 'fail',
    sha1: doc.sha1 === true,
    unsafe: doc.clock?.unsafe ?? 'warn',
    pcrs,
    bootChain: bootChainRules,
    forbidden,
    cmdForbidden: (doc.eventLog?.kernelCommandLine?.forbidden ?? []).map(glob),
    cmdRequired: (doc.eventLog?.kernelCommandLine?.required ?? []).map(glob),
    fwMinimum,
    fwDeny,
  };
}

/**
 * Reads and validates an attestation policy: JSON text (string or UTF-8
 * bytes, a BOM allowed) or an already parsed JSON value (plain objects,
 * arrays, strings, finite numbers, booleans, null).
 *
 * @throws PolicyError (`evidence.policy`) listing every issue (up to
 *   MAX_POLICY_ISSUES) with its JSON path and pointer; never anything else
 *   for any input.
 * @example
 *   const policy = parsePolicy(readFileSync('policy.json'));
 *   const v = evaluatePolicy(policy, { quote, pcrValues, eventLog: eventLogEvidence(log) });
 */
export function parsePolicy(input: unknown): Policy {
  const value = typeof input === 'string' || input instanceof Uint8Array ? readPolicyText(input) : input;
  const v = new SchemaValidator(POLICY_SCHEMA as unknown as SchemaNode);
  v.validate(POLICY_SCHEMA as unknown as SchemaNode, value, []);
  if (v.issues.length > 0) throw new PolicyError(v.issues);
  const doc = copyJson(value) as PolicyDocument;
  const semantic = semanticIssues(doc);
  if (semantic.length > 0) throw new PolicyError(semantic);
  const policy: Policy = Object.freeze({ kind: 'attestation-policy', version: 1, name: doc.name, document: doc });
  COMPILED.set(policy, compile(doc));
  return policy;
}

function compiledOf(policy: Policy | PolicyDocument): Compiled {
  if (policy !== null && typeof policy === 'object' && (policy as Policy).kind === 'attestation-policy') {
    const c = COMPILED.get(policy as Policy);
    if (c !== undefined) return c;
    return COMPILED.get(parsePolicy((policy as Policy).document))!;
  }
  const parsed = parsePolicy(policy);
  return COMPILED.get(parsed)!;
}

/** The AK requirements a policy implies for verifyQuote (`allowSha1`). */
export function akPolicyOf(policy: Policy): AkPolicy {
  return { allowSha1: compiledOf(policy).sha1 };
}

/** The clockInfo rules a policy implies for verifyQuote (`unsafe`), so the quote and the policy agree. */
export function clockPolicyOf(policy: Policy): ClockPolicy {
  return { unsafe: compiledOf(policy).unsafe };
}

const TYPE_RANK: Readonly<Record<MinimumTpmType, number>> = { discrete: 5, integrated: 4, firmware: 3, virtual: 2, software: 1 };
const ALL_TYPES: readonly TpmType[] = ['discrete', 'integrated', 'firmware', 'virtual', 'software', 'unknown'];

/** The ClassificationProfile a policy implies for classifyTpm (types from `tpm.minimumType`/`allowUnknownType`, assurance from `tpm.ekChain`). */
export function classificationProfileOf(policy: Policy): ClassificationProfile {
  const t = compiledOf(policy).doc.tpm;
  const min = t?.minimumType;
  // As tpmRules judges: unknown passes when allowed, or when the policy says nothing about types.
  const unknownOk = t?.allowUnknownType === true || (min === undefined && t?.allowUnknownType === undefined);
  const allowedTypes = ALL_TYPES.filter((x) => (x === 'unknown' ? unknownOk : min === undefined || TYPE_RANK[x] >= TYPE_RANK[min]));
  const req = t?.ekChain ?? 'none';
  const allowedAssurance: TpmAssurance[] = req === 'verified' ? ['verified'] : req === 'pre-registered' ? ['verified', 'pre-registered'] : ['verified', 'pre-registered', 'claimed'];
  return { name: policy.name ?? 'policy', allowedTypes, allowedAssurance };
}

// ---------------------------------------------------------------------------
// Evidence

/** A decoded event log, ready for policy: eventLogEvidence(log) makes it. */
export interface EventLogEvidence {
  /** decodeEvents(log): every record with its decoded body and whether its data is what its digests measured. */
  readonly events: readonly DecodedEvent[];
  /** replay(log): the PCR values the log's digests produce, per bank; compared here with the quoted values. */
  readonly replay: Replay;
}

/** Decodes and replays a parsed event log for evaluatePolicy (every bank the log carries and this runtime hashes). */
export function eventLogEvidence(log: EventLog): EventLogEvidence {
  return { events: decodeEvents(log), replay: replayLog(log) };
}

/**
 * What evaluatePolicy judges. Every field is optional; a rule whose evidence
 * is absent yields the policy's `missing` outcome.
 */
export interface PolicyEvidence {
  /** verifyQuote's verdict (verified with akPolicyOf/clockPolicyOf of this policy, ideally). */
  readonly quote?: QuoteVerdict;
  /**
   * The PCR values handed to verifyQuote with that quote (bank → PCR → value).
   * Only values of the signed selection are read, and only after they hash to the signed pcrDigest.
   */
  readonly pcrValues?: PcrValues;
  /** The device's measured-boot log, decoded and replayed (eventLogEvidence). */
  readonly eventLog?: EventLogEvidence;
  /**
   * replayIma's result for this quote (its `quoted` option given the same PCR
   * values): its `covered` entries are judged, and its running PCR values must equal the quoted ones.
   */
  readonly ima?: ImaReplayResult;
  /** classifyTpm's result (type, assurance, vendor). */
  readonly tpm?: TpmClassification;
  /** The EK certificate's verification (verifyEkCertificate, with the EK public area) or a chain result for this TPM's EK. */
  readonly ekChain?: ChainResult | EkCertificateVerification;
  /** The operator enrolled this TPM's EK beforehand (the caller compared the EK). */
  readonly ekPreRegistered?: boolean;
  /** TPM_PT_MANUFACTURER as text (TpmDescription.manufacturer); default the classification's vendor ID. */
  readonly manufacturer?: string;
  /** The firmware version to judge; default the accepted quote's signed TPMS_ATTEST.firmwareVersion. */
  readonly firmwareVersion?: bigint;
}

function argError(message: string): EvidenceError {
  return new EvidenceError('evidence.argument', `evaluatePolicy: ${message}`);
}

function isObject(v: unknown): v is Readonly<Record<string, unknown>> {
  return v !== null && typeof v === 'object';
}

function checkEvidenceShape(e: PolicyEvidence): void {
  if (!isObject(e)) throw argError('evidence must be an object');
  if (e.quote !== undefined && (!isObject(e.quote) || !Array.isArray(e.quote.checks) || typeof e.quote.accepted !== 'boolean')) throw argError('quote must be a QuoteVerdict');
  if (e.pcrValues !== undefined && !(e.pcrValues instanceof Map)) throw argError('pcrValues must be a Map bank → PCR → value');
  if (e.eventLog !== undefined && (!isObject(e.eventLog) || !Array.isArray(e.eventLog.events) || !isObject(e.eventLog.replay) || !(e.eventLog.replay.values instanceof Map))) {
    throw argError('eventLog must be { events: decodeEvents(log), replay: replay(log) } (eventLogEvidence)');
  }
  if (e.ima !== undefined && (!isObject(e.ima) || !Array.isArray(e.ima.covered) || !isObject(e.ima.verdict) || !(e.ima.pcrValues instanceof Map))) throw argError('ima must be a replayIma result');
  if (e.tpm !== undefined && (!isObject(e.tpm) || typeof e.tpm.type !== 'string' || typeof e.tpm.assurance !== 'string')) throw argError('tpm must be a classifyTpm result');
  if (e.ekChain !== undefined && !isObject(e.ekChain)) throw argError('ekChain must be a verifyEkCertificate or verifyEkChain result');
  if (e.ekPreRegistered !== undefined && typeof e.ekPreRegistered !== 'boolean') throw argError('ekPreRegistered must be a boolean');
  if (e.manufacturer !== undefined && typeof e.manufacturer !== 'string') throw argError('manufacturer must be a string');
  if (e.firmwareVersion !== undefined && (typeof e.firmwareVersion !== 'bigint' || e.firmwareVersion < 0n || e.firmwareVersion >= 1n << 64n)) {
    throw argError('firmwareVersion must be a UINT64 bigint');
  }
}

// ---------------------------------------------------------------------------
// What the quote establishes

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const short = (s: string): string => (s.length > 16 ? `${s.slice(0, 16)}…` : s);

/** Whether, and which, PCR values the quote vouches for. */
interface QuoteTrust {
  /** `accepted`: the quote verdict; PCR values usable only when `values` is set. */
  readonly quote: 'missing' | 'rejected' | 'accepted';
  /** Why the PCR values are not usable (when `values` is undefined): a reason code and a detail. */
  readonly pcrReason: string;
  readonly pcrDetail: string;
  /** The quoted values (signed selection only; SHA-1 banks dropped unless allowed): bank → PCR → value. */
  readonly values?: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
  /** Banks of the signed selection, SHA-1 included. */
  readonly signedBanks: readonly number[];
  readonly firmwareVersion?: bigint;
  readonly safe?: boolean;
}

function quoteTrust(evidence: PolicyEvidence, allowSha1: boolean): QuoteTrust {
  const q = evidence.quote;
  if (q === undefined) return { quote: 'missing', pcrReason: 'quote.missing', pcrDetail: 'no quote was given', signedBanks: [] };
  if (!q.accepted || q.attest === undefined) {
    const why = failures(q);
    return { quote: 'rejected', pcrReason: 'quote.rejected', pcrDetail: `the quote was rejected (${why.slice(0, 4).join(', ') || 'no attestation'})`, signedBanks: [] };
  }
  const attest = q.attest;
  if (attest.type !== TPM_ST.ATTEST_QUOTE) {
    return { quote: 'rejected', pcrReason: 'quote.rejected', pcrDetail: 'the attestation is not a quote', signedBanks: [] };
  }
  const base = { quote: 'accepted' as const, firmwareVersion: attest.firmwareVersion, safe: attest.clockInfo.safe === 1 };
  const selection: readonly TPMS_PCR_SELECTION[] = attest.attested.pcrSelect;
  const signedBanks = [...new Set(selection.filter((s) => pcrIndices(s).length > 0).map((s) => s.hash))];
  const digestOk = q.checks.some((c) => c.check === 'quote.pcr-digest' && c.outcome === 'pass');
  if (!digestOk) return { ...base, signedBanks, pcrReason: 'pcr.unverified', pcrDetail: 'the quote verdict has no passing quote.pcr-digest check' };
  const values = evidence.pcrValues;
  if (values === undefined) return { ...base, signedBanks, pcrReason: 'pcr.values-missing', pcrDetail: 'the quote was given without its PCR values' };
  // The values must be the quoted ones: re-hash them in selection order to the signed pcrDigest.
  const parts: Uint8Array[] = [];
  for (const s of selection) {
    for (const i of pcrIndices(s)) {
      const v = values.get(s.hash)?.get(i);
      if (!(v instanceof Uint8Array)) return { ...base, signedBanks, pcrReason: 'pcr.values-not-quoted', pcrDetail: `no value for ${bankName(s.hash)} PCR ${i} of the signed selection` };
      parts.push(v);
    }
  }
  const signed = attest.attested.pcrDigest;
  const candidates = [TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512, TPM_ALG.SHA1, TPM_ALG.SHA3_256, TPM_ALG.SHA3_384, TPM_ALG.SHA3_512, TPM_ALG.SM3_256].filter(
    (a) => isHashSupported(a) && digestSize(a) === signed.length,
  );
  if (!candidates.some((a) => hex(hash(a, ...parts)) === hex(signed))) {
    return { ...base, signedBanks, pcrReason: 'pcr.values-not-quoted', pcrDetail: 'the PCR values given do not hash to the quote’s signed pcrDigest' };
  }
  const trusted = new Map<number, Map<number, Uint8Array>>();
  for (const s of selection) {
    if (s.hash === TPM_ALG.SHA1 && !allowSha1) continue;
    let m = trusted.get(s.hash);
    if (m === undefined) trusted.set(s.hash, (m = new Map()));
    for (const i of pcrIndices(s)) m.set(i, values.get(s.hash)!.get(i)!);
  }
  return { ...base, signedBanks, pcrReason: 'pcr.quoted', pcrDetail: '', values: trusted };
}

/** Whether the log's replay of PCR `pcr` equals a quoted value (every quoted bank the log carries must agree). */
interface PcrProof {
  readonly ok: boolean;
  readonly reason: string;
  readonly detail: string;
  /** The banks in which the log's replay equals the quoted value (only these banks' digests are proven). */
  readonly banks: readonly number[];
}

function logPcrProof(trust: QuoteTrust, replayed: Replay, pcr: number): PcrProof {
  if (trust.values === undefined) return { ok: false, reason: trust.pcrReason, detail: trust.pcrDetail, banks: [] };
  const banks = [...trust.values].filter(([, m]) => m.has(pcr));
  if (banks.length === 0) return { ok: false, reason: 'pcr.not-quoted', detail: `PCR ${pcr} is not in the quote's signed selection (SHA-1 banks count only with "sha1": true)`, banks: [] };
  const proven: number[] = [];
  const notes: string[] = [];
  for (const [bank, m] of banks) {
    const logged = replayed.values.get(bank);
    if (logged === undefined) {
      notes.push(`the log has no ${bankName(bank)} digests`);
      continue;
    }
    if (replayed.incomplete.get(bank)?.has(pcr) === true) {
      notes.push(`an event of PCR ${pcr} lacks its ${bankName(bank)} digest`);
      continue;
    }
    const value = logged.get(pcr) ?? initialPcrValue(bank, pcr, replayed.startupLocality);
    if (hex(value) !== hex(m.get(pcr)!)) {
      return { ok: false, reason: 'pcr.mismatch', detail: `the log's ${bankName(bank)} PCR ${pcr} replays to ${short(hex(value))}, the quote holds ${short(hex(m.get(pcr)!))}`, banks: [] };
    }
    proven.push(bank);
  }
  if (proven.length === 0) return { ok: false, reason: 'pcr.not-comparable', detail: `PCR ${pcr}: ${notes.join('; ')}`, banks: [] };
  return { ok: true, reason: 'pcr.match', detail: `PCR ${pcr} replays to the quoted ${proven.map(bankName).join(', ')} value`, banks: proven };
}

// ---------------------------------------------------------------------------
// Rules

type Emit = (c: Check) => void;

interface Ctx {
  readonly c: Compiled;
  readonly e: PolicyEvidence;
  readonly trust: QuoteTrust;
  readonly emit: Emit;
}

function missingCheck(id: string, outcome: MissingEvidence, reason: string, detail: string): Check {
  return check(id, outcome === 'fail' ? 'fail' : 'not-performed', reason, detail);
}

/** The check for a rule that needs PCR values the quote does not give: missing evidence or a failure. */
function pcrUnusable(ctx: Ctx, id: string, path: string, missing: MissingEvidence): Check {
  const { trust } = ctx;
  const absent = trust.pcrReason === 'quote.missing' || trust.pcrReason === 'pcr.values-missing';
  return absent ? missingCheck(id, missing, trust.pcrReason, `${path}: ${trust.pcrDetail}`) : fail(id, trust.pcrReason, `${path}: ${trust.pcrDetail}`);
}

/**
 * `policy.quote`: pass `quote.accepted`; fail `quote.rejected`; `quote.missing` (the policy's missing outcome).
 * `policy.sha1`: pass `sha1.allowed` | `sha1.not-quoted`; warn `sha1.ignored` (SHA-1 banks beside others are not used);
 * fail `sha1.only` (the quote covers SHA-1 banks only); `quote.missing`.
 * `policy.clock`: pass `clock.safe`; `clock.unsafe` with the policy's severity (default warn); `quote.missing`.
 */
function quoteRules(ctx: Ctx): void {
  const { c, trust, emit } = ctx;
  if (trust.quote === 'missing') {
    emit(missingCheck('policy.quote', c.missing, 'quote.missing', '$: no quote was given'));
    emit(missingCheck('policy.sha1', c.missing, 'quote.missing', '$.sha1: no quote was given'));
    emit(missingCheck('policy.clock', c.missing, 'quote.missing', '$.clock: no quote was given'));
    return;
  }
  if (trust.quote === 'rejected') {
    emit(fail('policy.quote', 'quote.rejected', `$: ${trust.pcrDetail}`));
    emit(fail('policy.sha1', 'quote.rejected', '$.sha1: the quote was rejected'));
    emit(fail('policy.clock', 'quote.rejected', '$.clock: the quote was rejected'));
    return;
  }
  emit(pass('policy.quote', 'quote.accepted', '$: the quote was verified and accepted'));
  const sha1 = trust.signedBanks.includes(TPM_ALG.SHA1);
  if (c.sha1) emit(pass('policy.sha1', 'sha1.allowed', `$.sha1: SHA-1 allowed${sha1 ? '; the quote covers a SHA-1 bank' : ''}`));
  else if (!sha1) emit(pass('policy.sha1', 'sha1.not-quoted', '$.sha1: the quote covers no SHA-1 bank'));
  else if (trust.signedBanks.length > 1) emit(warn('policy.sha1', 'sha1.ignored', '$.sha1: the quote covers a SHA-1 bank, whose values are not used'));
  else emit(fail('policy.sha1', 'sha1.only', '$.sha1: the quote covers only SHA-1 banks, which the policy refuses'));
  if (trust.safe === false) {
    emit(check('policy.clock', c.unsafe, 'clock.unsafe', `$.clock.unsafe: safe = 0 (a power loss without an orderly shutdown): clock values may repeat; the policy rates it ${c.unsafe}`));
  } else {
    emit(pass('policy.clock', 'clock.safe', '$.clock: safe = 1'));
  }
}

/** `policy.pcr`, one per bank and PCR of the policy: pass `pcr.match`; fail `pcr.mismatch`, `pcr.not-quoted`, `quote.rejected`, `pcr.unverified`, `pcr.values-not-quoted`; `quote.missing`, `pcr.values-missing`. */
function pcrRules(ctx: Ctx): void {
  const { c, trust, emit } = ctx;
  for (const [bank, rules] of c.pcrs) {
    for (const [pcr, allowed] of rules) {
      const path = `$.pcrs.${bankName(bank)}["${pcr}"]`;
      if (trust.values === undefined) {
        emit(pcrUnusable(ctx, 'policy.pcr', path, c.missing));
        continue;
      }
      const v = trust.values.get(bank)?.get(pcr);
      if (v === undefined) {
        emit(fail('policy.pcr', 'pcr.not-quoted', `${path}: ${bankName(bank)} PCR ${pcr} is not in the quote's signed selection`));
        continue;
      }
      const h = hex(v);
      emit(
        allowed.includes(h)
          ? pass('policy.pcr', 'pcr.match', `${path}: ${bankName(bank)} PCR ${pcr} is ${short(h)}, ${allowed.length === 1 ? 'the required value' : `one of ${allowed.length} allowed values`}`)
          : fail('policy.pcr', 'pcr.mismatch', `${path}: ${bankName(bank)} PCR ${pcr} is ${h}, not ${allowed.length === 1 ? 'the required value' : `one of the ${allowed.length} allowed values`}`),
      );
    }
  }
}

/** The texts an event carries that a text matcher reads. */
function eventTexts(d: DecodedEvent): string[] {
  const b = d.body;
  switch (b.kind) {
    case 'action':
      return [b.text];
    case 'ipl':
      return b.grub !== undefined ? [b.text, b.grub.text] : [b.text];
    case 'uefi-variable':
      return [b.variable.name];
    case 'image-load':
      return b.filePath !== undefined ? [b.filePath] : [];
    case 'firmware-blob':
    case 'handoff-tables':
      return b.description !== undefined ? [b.description] : [];
    case 'crtm-version':
    case 'post-code':
      return b.text !== undefined ? [b.text] : [];
    case 'no-action':
      return b.signature !== undefined ? [b.signature] : [];
    default:
      return [];
  }
}

function matches(m: CompiledMatcher, d: DecodedEvent): boolean {
  const e = d.event;
  if (m.rule.pcr !== undefined && e.pcrIndex !== m.rule.pcr) return false;
  if (m.type !== undefined && eventTypeName(e.eventType) !== m.type) return false;
  if (m.digest !== undefined && !e.digests.some((x) => x.hashAlg === m.digest!.alg && hex(x.digest) === m.digest!.hex)) return false;
  if (m.text !== undefined && !eventTexts(d).some((t) => m.text!.test(t))) return false;
  return true;
}

/** PCRs 0–7 (the firmware's, PFP §3.3.4) and every PCR the log extends: what a forbidden event without a PCR could hide in. */
function forbiddenScope(m: CompiledMatcher, replayed: Replay): number[] {
  if (m.rule.pcr !== undefined) return [m.rule.pcr];
  const s = new Set<number>([0, 1, 2, 3, 4, 5, 6, 7, ...replayed.extendCounts.keys()]);
  return [...s].sort((a, b) => a - b);
}

function describeMatcher(m: EventMatcher): string {
  return Object.entries(m)
    .filter(([k]) => k !== 'reason')
    .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
    .join(', ');
}

/**
 * Event-log rules.
 * `policy.secure-boot`: pass `secure-boot.enabled`; fail `secure-boot.disabled`, `secure-boot.unknown`
 *   (secureBootState's reason in the detail), `secure-boot.unverified` (PCR 7 not proven by the quote).
 * `policy.boot-chain`: pass `boot-chain.allowed`; fail `boot-chain.not-allowed`, `boot-chain.unverified`, `boot-chain.no-bank`.
 * `policy.forbidden-event` (one per matcher): pass `event.absent`; fail `event.forbidden`, `event.unverified`.
 * `policy.kernel-cmdline`: pass `cmdline.allowed`; fail `cmdline.forbidden`, `cmdline.required-missing`,
 *   `cmdline.absent`, `cmdline.unverified`.
 * Each: `eventlog.missing` / `quote.missing` (the missing outcome), `quote.rejected` and other PCR reasons (fail).
 */
function eventLogRules(ctx: Ctx): void {
  const { c, e, trust, emit } = ctx;
  const rules = c.doc.eventLog;
  if (rules === undefined) return;
  const missing = rules.missing ?? c.missing;
  const ids: [string, string][] = [];
  if (rules.secureBoot === 'enabled') ids.push(['policy.secure-boot', '$.eventLog.secureBoot']);
  if (c.bootChain !== undefined) ids.push(['policy.boot-chain', '$.eventLog.bootChain']);
  c.forbidden.forEach((m) => ids.push(['policy.forbidden-event', `$.eventLog.forbiddenEvents[${m.index}]`]));
  if (rules.kernelCommandLine !== undefined) ids.push(['policy.kernel-cmdline', '$.eventLog.kernelCommandLine']);
  const log = e.eventLog;
  if (log === undefined || trust.values === undefined) {
    for (const [id, path] of ids) emit(log === undefined ? missingCheck(id, missing, 'eventlog.missing', `${path}: no event log was given`) : pcrUnusable(ctx, id, path, missing));
    return;
  }
  const proofs = new Map<number, PcrProof>();
  const proof = (pcr: number): PcrProof => {
    let p = proofs.get(pcr);
    if (p === undefined) proofs.set(pcr, (p = logPcrProof(trust, log.replay, pcr)));
    return p;
  };
  const events = log.events;

  if (rules.secureBoot === 'enabled') {
    const path = '$.eventLog.secureBoot';
    const p7 = proof(7);
    const sb = secureBootState(events);
    if (!p7.ok) emit(fail('policy.secure-boot', 'secure-boot.unverified', `${path}: the log's PCR 7 is not proven by the quote (${p7.reason}: ${p7.detail})`));
    else if (sb.state === 'enabled' && sb.digestVerified) emit(pass('policy.secure-boot', 'secure-boot.enabled', `${path}: SecureBoot = 1 (event ${sb.eventIndex}, digest-verified, PCR 7 quoted)`));
    else if (sb.state === 'disabled' && sb.digestVerified) emit(fail('policy.secure-boot', 'secure-boot.disabled', `${path}: SecureBoot = 0 (event ${sb.eventIndex}, digest-verified)`));
    else emit(fail('policy.secure-boot', 'secure-boot.unknown', `${path}: the Secure Boot state cannot be established from digest-verified data (${sb.reason}${sb.state !== 'unknown' ? `, ${sb.state} but only VariableData is bound` : ''})`));
  }

  if (c.bootChain !== undefined) {
    const path = '$.eventLog.bootChain';
    const p4 = proof(4);
    // Only a bank in which PCR 4 replays to the quote has proven digests.
    const bank = [...c.bootChain.keys()].find((b) => p4.banks.includes(b));
    if (!p4.ok) emit(fail('policy.boot-chain', 'boot-chain.unverified', `${path}: the log's PCR 4 is not proven by the quote (${p4.reason}: ${p4.detail})`));
    else if (bank === undefined) {
      emit(fail('policy.boot-chain', 'boot-chain.no-bank', `${path}: the policy lists ${[...c.bootChain.keys()].map(bankName).join(', ')} digests; the quote proves the log's PCR 4 in ${p4.banks.map(bankName).join(', ')}`));
    }
    else {
      const allowed = c.bootChain.get(bank)!;
      const chain = bootChain(events, bank);
      const bad = chain.filter((x) => !allowed.has(hex(x.digest)));
      emit(
        bad.length === 0
          ? pass('policy.boot-chain', 'boot-chain.allowed', `${path}.${bankName(bank)}: all ${chain.length} PCR 4 measurement(s) are allowed`)
          : fail(
              'policy.boot-chain',
              'boot-chain.not-allowed',
              `${path}.${bankName(bank)}: ${bad.length} of ${chain.length} PCR 4 measurement(s) not allowed: ${bad
                .slice(0, 5)
                .map((x) => `event ${x.eventIndex} ${x.type}${x.filePath !== undefined ? ` ${x.filePath}` : ''} ${hex(x.digest)}`)
                .join('; ')}`,
            ),
      );
    }
  }

  for (const m of c.forbidden) {
    const path = `$.eventLog.forbiddenEvents[${m.index}]`;
    const why = m.rule.reason !== undefined ? ` (${m.rule.reason})` : '';
    const hit = events.find((d) => matches(m, d));
    if (hit !== undefined) {
      emit(fail('policy.forbidden-event', 'event.forbidden', `${path}: event ${hit.event.index} (${hit.type}, PCR ${hit.event.pcrIndex}) matches ${describeMatcher(m.rule)}${why}`));
      continue;
    }
    const scope = forbiddenScope(m, log.replay);
    const unproven = scope.map((p) => [p, proof(p)] as const).filter(([, p]) => !p.ok);
    // A digest matcher sees only its bank: in a PCR with events, that bank's digests must be the proven ones.
    const unprovenBank =
      m.digest === undefined ? [] : scope.filter((p) => (log.replay.extendCounts.get(p) ?? 0) > 0 && proof(p).ok && !proof(p).banks.includes(m.digest!.alg));
    // A text matcher cannot see through data that is not what was measured: such an event might have been the forbidden one.
    const altered = m.text !== undefined ? events.filter((d) => d.binding.status === 'mismatch' && scope.includes(d.event.pcrIndex)) : [];
    if (unproven.length > 0) {
      emit(fail('policy.forbidden-event', 'event.unverified', `${path}: absence cannot be shown: ${unproven.slice(0, 4).map(([p, x]) => `PCR ${p} ${x.reason}`).join('; ')}`));
    } else if (unprovenBank.length > 0) {
      emit(fail('policy.forbidden-event', 'event.unverified', `${path}: the ${bankName(m.digest!.alg)} digests of PCR ${unprovenBank.join(', ')} are not proven by the quote`));
    } else if (altered.length > 0) {
      emit(fail('policy.forbidden-event', 'event.unverified', `${path}: event ${altered[0]!.event.index} carries data that is not what its digest measured`));
    } else {
      emit(pass('policy.forbidden-event', 'event.absent', `${path}: no event matches ${describeMatcher(m.rule)} in PCR(s) ${scope.join(', ')}`));
    }
  }

  if (rules.kernelCommandLine !== undefined) {
    const path = '$.eventLog.kernelCommandLine';
    const lines = kernelCommandLines(events);
    const unverified = lines.filter((l) => !l.digestVerified || !proof(l.pcrIndex).ok);
    if (lines.length === 0) emit(fail('policy.kernel-cmdline', 'cmdline.absent', `${path}: the log measures no kernel command line`));
    else if (unverified.length > 0) {
      const l = unverified[0]!;
      const why = !l.digestVerified ? 'its text is not what its digest measured' : `${proof(l.pcrIndex).reason}: ${proof(l.pcrIndex).detail}`;
      emit(fail('policy.kernel-cmdline', 'cmdline.unverified', `${path}: the command line of event ${l.eventIndex} (PCR ${l.pcrIndex}) is not proven (${why})`));
    } else {
      let verdictCheck: Check | undefined;
      for (const l of lines) {
        const params = l.text.split(/\s+/).filter((x) => x.length > 0);
        const forbidden = c.cmdForbidden.find((g) => params.some((p) => g.test(p)));
        if (forbidden !== undefined) {
          const p = params.find((x) => forbidden.test(x))!;
          verdictCheck = fail('policy.kernel-cmdline', 'cmdline.forbidden', `${path}.forbidden: parameter ${JSON.stringify(p)} of event ${l.eventIndex} matches ${JSON.stringify(forbidden.pattern)}`);
          break;
        }
        const absent = c.cmdRequired.find((g) => !params.some((p) => g.test(p)));
        if (absent !== undefined) {
          verdictCheck = fail('policy.kernel-cmdline', 'cmdline.required-missing', `${path}.required: the command line of event ${l.eventIndex} has no parameter matching ${JSON.stringify(absent.pattern)}`);
          break;
        }
      }
      emit(verdictCheck ?? pass('policy.kernel-cmdline', 'cmdline.allowed', `${path}: ${lines.length} measured command line(s), digest-verified and quoted, meet the rules`));
    }
  }
}

/**
 * IMA rules, on the replay's `covered` entries.
 * `policy.ima.replay`: pass `ima.verified`; fail `ima.rejected` (the replay verdict failed), `ima.unverified`
 *   (its running PCR values are not the quoted ones), PCR reasons; `ima.missing` / `quote.missing`.
 * `policy.ima.deny` (with a denylist): pass `ima.none-denied`; fail `ima.denied`.
 * `policy.ima.allow` (with an allowlist): pass `ima.allowed`; fail `ima.not-allowed` (a path not listed, a
 *   digest not listed for its path, an entry without a digest).
 * `policy.ima.violations`: pass `ima.no-violations`; `ima.violations` with the policy's severity (default warn).
 */
function imaRules(ctx: Ctx): void {
  const { c, e, trust, emit } = ctx;
  const rules = c.doc.ima;
  if (rules === undefined) return;
  const missing = rules.missing ?? c.missing;
  const ima = e.ima;
  const ids: [string, string][] = [['policy.ima.replay', '$.ima']];
  if ((rules.deny?.length ?? 0) > 0) ids.push(['policy.ima.deny', '$.ima.deny']);
  if (rules.allow !== undefined) ids.push(['policy.ima.allow', '$.ima.allow']);
  ids.push(['policy.ima.violations', '$.ima.violations']);
  if (ima === undefined) {
    for (const [id, path] of ids) emit(missingCheck(id, missing, 'ima.missing', `${path}: no IMA replay was given`));
    return;
  }
  // The replay: accepted by replayIma, and its running values are what the quote holds.
  if (trust.values === undefined) emit(pcrUnusable(ctx, 'policy.ima.replay', '$.ima', missing));
  else if (!ima.verdict.accepted) emit(fail('policy.ima.replay', 'ima.rejected', `$.ima: the IMA replay was rejected (${failures(ima.verdict).slice(0, 4).join(', ')})`));
  else {
    const pcrs = [...new Set([10, ...ima.covered.map((x) => x.pcr)])].sort((a, b) => a - b);
    let problem: string | undefined;
    for (const pcr of pcrs) {
      const quoted = [...trust.values].filter(([, m]) => m.has(pcr));
      if (quoted.length === 0) {
        problem = `PCR ${pcr} is not in the quote's signed selection`;
        break;
      }
      let matched = false;
      for (const [bank, m] of quoted) {
        const name = bankName(bank);
        if (!ima.state.banks.includes(name)) continue;
        // The running values under every kernel behaviour still possible for this bank (state.pcrs; absent: never extended).
        const decided = ima.behaviour[name];
        const running = ima.state.pcrs[String(pcr)]?.[name];
        const candidates = (['bank-hash', 'padded-sha1'] as const)
          .filter((b) => decided === undefined || decided === 'either' || decided === b)
          .map((b) => (running === undefined ? '00'.repeat(m.get(pcr)!.length) : running[b]))
          .filter((x): x is string => x !== undefined);
        const want = hex(m.get(pcr)!);
        if (!candidates.includes(want)) {
          problem = `the replay's ${name} PCR ${pcr} is ${candidates.map(short).join(' or ') || 'unknown'}, the quote holds ${short(want)}`;
          break;
        }
        matched = true;
      }
      if (problem !== undefined) break;
      if (!matched) {
        problem = `the replay tracks none of the quoted banks for PCR ${pcr}`;
        break;
      }
    }
    emit(
      problem === undefined
        ? pass('policy.ima.replay', 'ima.verified', `$.ima: ${ima.covered.length} new entr${ima.covered.length === 1 ? 'y' : 'ies'} replay to the quoted PCR ${pcrs.join(', ')}`)
        : fail('policy.ima.replay', 'ima.unverified', `$.ima: ${problem}`),
    );
  }
  const findings = evaluateImaAllowlist(ima.covered, {
    ...(rules.allow !== undefined ? { allow: rules.allow } : {}),
    ...(rules.exclude !== undefined ? { exclude: rules.exclude } : {}),
    ...(rules.deny !== undefined ? { deny: rules.deny } : {}),
  });
  const list = (fs: readonly ImaFinding[]): string =>
    fs
      .slice(0, 5)
      .map((f) => `#${f.index} ${f.name !== undefined ? JSON.stringify(shortName(f.name)) : '(no name)'} ${f.digest ?? ''} ${f.reason}`.replace(/ +/g, ' ').trim())
      .join('; ') + (fs.length > 5 ? `; and ${fs.length - 5} more` : '');
  if ((rules.deny?.length ?? 0) > 0) {
    const denied = findings.filter((f) => f.reason === 'digest.denied');
    emit(denied.length === 0 ? pass('policy.ima.deny', 'ima.none-denied', `$.ima.deny: none of ${findings.length} entries has a denied digest`) : fail('policy.ima.deny', 'ima.denied', `$.ima.deny: ${denied.length} entr${denied.length === 1 ? 'y' : 'ies'} with a denied digest: ${list(denied)}`));
  }
  if (rules.allow !== undefined) {
    const bad = findings.filter((f) => f.reason === 'path.not-listed' || f.reason === 'digest.not-allowed' || f.reason === 'entry.no-digest');
    emit(bad.length === 0 ? pass('policy.ima.allow', 'ima.allowed', `$.ima.allow: every one of ${findings.length} entries is allowed, excluded or a violation`) : fail('policy.ima.allow', 'ima.not-allowed', `$.ima.allow: ${bad.length} entr${bad.length === 1 ? 'y' : 'ies'} not allowed: ${list(bad)}`));
  }
  const violations = findings.filter((f) => f.reason === 'entry.violation');
  const sev = rules.violations ?? 'warn';
  emit(violations.length === 0 ? pass('policy.ima.violations', 'ima.no-violations', '$.ima.violations: no violation among the entries') : check('policy.ima.violations', sev, 'ima.violations', `$.ima.violations: ${violations.length} violation(s) (ToMToU or open-writers; no digest to judge): ${list(violations)}`));
}

function shortName(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/**
 * TPM rules.
 * `policy.tpm.type` (with minimumType or allowUnknownType): pass `type.allowed`; fail `type.software-refused`,
 *   `type.below-minimum`, `type.unknown-refused`; `tpm.missing`.
 * `policy.tpm.ek-chain` (with ekChain): pass `ek.verified`, `ek.pre-registered`, `ek.not-required`; fail
 *   `ek.key-mismatch`, `ek.key-unchecked` (verified without the EK public area), `ek.certificate-rejected`, `ek.not-verified` (the chain is incomplete or invalid, or
 *   only pre-registered where verified is required), `ek.claimed`; `ek.missing`.
 */
function tpmRules(ctx: Ctx): void {
  const { c, e, emit } = ctx;
  const rules = c.doc.tpm;
  if (rules === undefined) return;
  const missing = rules.missing ?? c.missing;
  if (rules.minimumType !== undefined || rules.allowUnknownType !== undefined) {
    const path = rules.minimumType !== undefined ? '$.tpm.minimumType' : '$.tpm.allowUnknownType';
    const t = e.tpm;
    if (t === undefined) emit(missingCheck('policy.tpm.type', missing, 'tpm.missing', `${path}: no TPM classification was given`));
    else {
      const claim = `${t.type} TPM (${t.assurance}${t.vendor !== undefined ? `, ${t.vendor.name}` : ''})`;
      const min = rules.minimumType;
      if (t.type === 'unknown') {
        emit(rules.allowUnknownType === true ? pass('policy.tpm.type', 'type.allowed', `${path}: ${claim}; unknown types allowed`) : fail('policy.tpm.type', 'type.unknown-refused', `$.tpm.allowUnknownType: ${claim}: a TPM of unknown type is not allowed`));
      } else if (min === undefined || TYPE_RANK[t.type] >= TYPE_RANK[min]) {
        emit(pass('policy.tpm.type', 'type.allowed', `${path}: ${claim}${min !== undefined ? `, at least ${min}` : ''}`));
      } else {
        emit(fail('policy.tpm.type', t.type === 'software' ? 'type.software-refused' : 'type.below-minimum', `${path}: ${claim}, below the required ${min}`));
      }
    }
  }
  if (rules.ekChain !== undefined) {
    const path = '$.tpm.ekChain';
    const req = rules.ekChain;
    if (req === 'none') {
      emit(pass('policy.tpm.ek-chain', 'ek.not-required', `${path}: no EK identity required`));
      return;
    }
    const chain = e.ekChain;
    let chainState: { status: 'verified' | 'failed' | 'absent'; reason: string; detail: string } = { status: 'absent', reason: 'ek.missing', detail: 'no EK certificate verification was given' };
    if (chain !== undefined) {
      if ('verdict' in chain) {
        if (chain.keyMatches === false) chainState = { status: 'failed', reason: 'ek.key-mismatch', detail: "the EK certificate does not certify this TPM's EK" };
        else if (chain.chain === undefined) chainState = { status: 'failed', reason: 'ek.certificate-rejected', detail: `the EK certificate was not verified (${failures(chain.verdict).slice(0, 3).join(', ')})` };
        else if (chain.chain.status !== 'verified') chainState = { status: 'failed', reason: 'ek.not-verified', detail: `EK certificate chain ${chain.chain.status}: ${chain.chain.detail}` };
        else if (chain.keyMatches !== true) chainState = { status: 'failed', reason: 'ek.key-unchecked', detail: "the EK certificate was verified without this TPM's EK (pass ekPublic to verifyEkCertificate)" };
        else if (!chain.verdict.accepted) chainState = { status: 'failed', reason: 'ek.certificate-rejected', detail: `the EK certificate was rejected (${failures(chain.verdict).slice(0, 3).join(', ')})` };
        else chainState = { status: 'verified', reason: 'ek.verified', detail: chain.chain.detail };
      } else {
        chainState = chain.status === 'verified' ? { status: 'verified', reason: 'ek.verified', detail: chain.detail } : { status: 'failed', reason: 'ek.not-verified', detail: `EK certificate chain ${chain.status}: ${chain.detail}` };
      }
    } else if (e.tpm?.assurance === 'verified') {
      chainState = { status: 'verified', reason: 'ek.verified', detail: 'the classification says the EK chain verified' };
    }
    const preRegistered = e.ekPreRegistered === true || e.tpm?.assurance === 'pre-registered';
    if (chainState.status === 'verified') emit(pass('policy.tpm.ek-chain', 'ek.verified', `${path}: ${chainState.detail}`));
    else if (req === 'pre-registered' && preRegistered) emit(pass('policy.tpm.ek-chain', 'ek.pre-registered', `${path}: the EK was enrolled beforehand${chainState.status === 'failed' ? ` (${chainState.reason}: ${chainState.detail})` : ''}`));
    else if (chainState.status === 'failed') emit(fail('policy.tpm.ek-chain', chainState.reason, `${path}: ${req} required; ${chainState.detail}`));
    else if (preRegistered) emit(fail('policy.tpm.ek-chain', 'ek.not-verified', `${path}: a verified EK chain is required; the EK is only pre-registered`));
    else if (e.tpm !== undefined || e.ekPreRegistered !== undefined) emit(fail('policy.tpm.ek-chain', 'ek.claimed', `${path}: ${req} required; the TPM's identity is only claimed`));
    else emit(missingCheck('policy.tpm.ek-chain', missing, 'ek.missing', `${path}: no EK certificate verification, classification or enrolment was given`));
  }
}

/**
 * Firmware rules.
 * `policy.firmware.minimum` (with minimum): pass `firmware.at-least`, `firmware.no-minimum` (none for this
 *   manufacturer); fail `firmware.below-minimum`; `firmware.missing`.
 * `policy.firmware.deny` (with deny): pass `firmware.not-denied`; fail `firmware.denied`; `firmware.missing`.
 */
function firmwareRules(ctx: Ctx): void {
  const { c, e, trust, emit } = ctx;
  const rules = c.doc.firmware;
  if (rules === undefined) return;
  const missing = rules.missing ?? c.missing;
  const version = e.firmwareVersion ?? (trust.quote === 'accepted' ? trust.firmwareVersion : undefined);
  const source = e.firmwareVersion !== undefined ? 'given' : 'signed in the quote';
  const manufacturer = (e.manufacturer ?? e.tpm?.vendor?.id)?.trim().toUpperCase();
  const need = (id: string, path: string): boolean => {
    if (version === undefined) {
      emit(missingCheck(id, missing, 'firmware.missing', `${path}: no firmware version (from an accepted quote or given)`));
      return false;
    }
    return true;
  };
  if (rules.minimum !== undefined && need('policy.firmware.minimum', '$.firmware.minimum')) {
    const key = manufacturer !== undefined && c.fwMinimum.has(manufacturer) ? manufacturer : c.fwMinimum.has('*') ? '*' : undefined;
    if (manufacturer === undefined && !c.fwMinimum.has('*')) emit(missingCheck('policy.firmware.minimum', missing, 'firmware.missing', '$.firmware.minimum: the manufacturer is not known'));
    else if (key === undefined) emit(pass('policy.firmware.minimum', 'firmware.no-minimum', `$.firmware.minimum: no minimum for manufacturer ${manufacturer}`));
    else {
      const min = c.fwMinimum.get(key)!;
      const path = `$.firmware.minimum[${JSON.stringify(key)}]`;
      emit(
        version! >= min
          ? pass('policy.firmware.minimum', 'firmware.at-least', `${path}: firmware ${formatFirmwareVersion(version!)} (${source}) is at least ${formatFirmwareVersion(min)}`)
          : fail('policy.firmware.minimum', 'firmware.below-minimum', `${path}: firmware ${formatFirmwareVersion(version!)} (${source}) is below ${formatFirmwareVersion(min)}`),
      );
    }
  }
  if (rules.deny !== undefined && need('policy.firmware.deny', '$.firmware.deny')) {
    const hit = c.fwDeny.find((d) => (d.manufacturer === undefined || d.manufacturer === manufacturer) && version! >= d.from && version! <= d.to);
    emit(
      hit === undefined
        ? pass('policy.firmware.deny', 'firmware.not-denied', `$.firmware.deny: firmware ${formatFirmwareVersion(version!)} (${source}${manufacturer !== undefined ? `, ${manufacturer}` : ''}) is on no deny entry`)
        : fail('policy.firmware.deny', 'firmware.denied', `$.firmware.deny[${hit.index}]: firmware ${formatFirmwareVersion(version!)} (${source}) is denied (${hit.manufacturer ?? 'any manufacturer'} ${hit.text})${hit.reason !== undefined ? `: ${hit.reason}` : ''}`),
    );
  }
}

/**
 * Evaluates a policy against a device's evidence: one check per rule (see
 * the module comment for ids and the functions above for reasons), each
 * with a detail that starts with the rule's JSON path. Pure: no I/O, no
 * clock. Accepted iff no check failed.
 *
 * @param policy parsePolicy's result (or a document, parsed here: PolicyError if invalid).
 * @throws EvidenceError `evidence.argument` for evidence of the wrong shape; PolicyError for an invalid document.
 * @example
 *   const q = verifyQuote({ attest, signature, pcrValues }, { ak, akQualifiedName, challenge, now, akPolicy: akPolicyOf(policy), clockPolicy: clockPolicyOf(policy) });
 *   const v = evaluatePolicy(policy, { quote: q, pcrValues, eventLog: eventLogEvidence(parseEventLog(log)), tpm: classifyTpm(description, ekCert) });
 */
export function evaluatePolicy(policy: Policy | PolicyDocument, evidence: PolicyEvidence): Verdict {
  const c = compiledOf(policy);
  checkEvidenceShape(evidence);
  const checks: Check[] = [];
  const ctx: Ctx = { c, e: evidence, trust: quoteTrust(evidence, c.sha1), emit: (x) => checks.push(x) };
  quoteRules(ctx);
  pcrRules(ctx);
  eventLogRules(ctx);
  imaRules(ctx);
  tpmRules(ctx);
  firmwareRules(ctx);
  return verdict(checks);
}

/** The outcome of the first check with this id, for callers that branch on one rule. */
export function ruleOutcome(v: Verdict, id: string): Outcome | undefined {
  return v.checks.find((x) => x.check === id)?.outcome;
}

