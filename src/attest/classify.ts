/**
 * What kind of TPM a device has — discrete chip, integrated into a SoC,
 * firmware TPM, virtual TPM of a hypervisor, software TPM, or unknown — and
 * how far that is established.
 *
 * Evidence, weakest first: what the TPM reports about itself (TPM_PT_MANUFACTURER
 * and the vendor strings, Part 2 §6.13; carried by a TpmDescription), and its
 * EK certificate (the SAN's TCG attributes and the issuing CAs' names). A TPM
 * can report anything, so its own report is only *claimed*; the type counts as
 * *verified* once the EK certificate chains to a root the operator configured
 * and certifies this TPM's EK, or as *pre-registered* when the operator
 * enrolled the EK beforehand (a manufacturing list).
 *
 * Software identities are fixed facts: swtpm (libtpms) reports manufacturer
 * "IBM" with vendor strings "SW TPM", and swtpm_localca issues its EK
 * certificates as `CN=swtpm-localca` with tpmModel "swtpm"; trustroot's own
 * software TPM reports manufacturer "TRST", vendor strings "trustroot" and
 * "software TPM", and its EK CA is `CN=trustroot software TPM CA, O=trustroot`
 * (../shared/docs/design.md, "Identity"). A software marker anywhere makes
 * the type `software`, whatever else is claimed.
 */
import type { TpmDescription } from '../tpm/description.js';
import type { ChainResult, EkCertificateVerification } from './chain.js';
import type { ParsedCertificate } from './ekcert.js';
import { fail, pass, verdict, warn, type Check, type Verdict } from './verdict.js';

export type TpmType = 'discrete' | 'integrated' | 'firmware' | 'virtual' | 'software' | 'unknown';

/** How far the TPM's identity is established. */
export type TpmAssurance = 'verified' | 'pre-registered' | 'claimed';

export interface ClassificationReason {
  /** Stable: `vendor.known`, `software.swtpm`, `chain.verified`, `vendor.conflict`, … */
  readonly code: string;
  readonly detail: string;
}

export interface TpmClassification {
  readonly type: TpmType;
  readonly assurance: TpmAssurance;
  /** True while the type rests on what the TPM says about itself (assurance `claimed`). */
  readonly claimed: boolean;
  /** The TCG vendor the type was read from, when known. */
  readonly vendor?: { readonly id: string; readonly name: string };
  /** The evidence that decided, in order. */
  readonly reasons: readonly ClassificationReason[];
  /** Whether the profile accepts this type at this assurance. */
  readonly accepted: boolean;
  /** `tpm.identity` (assurance) and `tpm.type` (type) checks against the profile. */
  readonly verdict: Verdict;
}

/** Which types and assurances a deployment accepts. */
export interface ClassificationProfile {
  readonly name: string;
  readonly allowedTypes: readonly TpmType[];
  readonly allowedAssurance: readonly TpmAssurance[];
}

/** Production: a verified EK chain or a pre-registered EK, and never a software TPM. */
export const PRODUCTION_PROFILE: ClassificationProfile = {
  name: 'production',
  allowedTypes: ['discrete', 'integrated', 'firmware', 'virtual', 'unknown'],
  allowedAssurance: ['verified', 'pre-registered'],
};

/** Tests and development: any type, software TPMs included, even when only claimed. */
export const TEST_PROFILE: ClassificationProfile = {
  name: 'test',
  allowedTypes: ['discrete', 'integrated', 'firmware', 'virtual', 'software', 'unknown'],
  allowedAssurance: ['verified', 'pre-registered', 'claimed'],
};

export interface ClassifyOptions {
  /** Default `production`. */
  readonly profile?: 'production' | 'test' | ClassificationProfile;
  /** The operator enrolled this TPM's EK beforehand (the caller compared the EK). */
  readonly preRegistered?: boolean;
}

interface VendorInfo {
  readonly name: string;
  readonly type: TpmType;
  readonly note: string;
}

/**
 * TCG vendor IDs (TCG Vendor ID Registry; the same table as Microsoft's TPM
 * tools) and the form of TPM each vendor ships. Vendors whose TPM form is not
 * settled by the ID alone (HPE, Lenovo, Samsung, …) are known but `unknown`.
 */
const VENDORS: Readonly<Record<string, VendorInfo>> = {
  IFX: { name: 'Infineon', type: 'discrete', note: 'Infineon OPTIGA TPM chips' },
  STM: { name: 'STMicroelectronics', type: 'discrete', note: 'ST33 TPM chips' },
  NTC: { name: 'Nuvoton', type: 'discrete', note: 'Nuvoton NPCT TPM chips' },
  WEC: { name: 'Winbond', type: 'discrete', note: 'Winbond TPM chips (older Nuvoton parts report WEC)' },
  NTZ: { name: 'Nationz', type: 'discrete', note: 'Nationz TPM chips' },
  ATML: { name: 'Atmel (Microchip)', type: 'discrete', note: 'Atmel/Microchip AT97/ATTPM chips' },
  NSM: { name: 'National Semiconductor', type: 'discrete', note: 'National Semiconductor TPM chips' },
  SMSC: { name: 'SMSC', type: 'discrete', note: 'SMSC TPM chips' },
  SNS: { name: 'Sinosun', type: 'discrete', note: 'Sinosun TPM chips' },
  INTC: { name: 'Intel', type: 'firmware', note: 'Intel PTT, a firmware TPM in the CSME' },
  AMD: { name: 'AMD', type: 'firmware', note: 'AMD fTPM, a firmware TPM in the PSP' },
  QCOM: { name: 'Qualcomm', type: 'firmware', note: 'Qualcomm firmware TPM in the TrustZone TEE' },
  MSFT: { name: 'Microsoft', type: 'virtual', note: 'Hyper-V/Azure virtual TPM (Pluton reports MSFT too: see the vendor string and CA names)' },
  GOOG: { name: 'Google', type: 'virtual', note: 'Google Compute Engine virtual TPM (Shielded VM)' },
  VMW: { name: 'VMware', type: 'virtual', note: 'VMware virtual TPM' },
  IBM: { name: 'IBM', type: 'unknown', note: 'IBM: software TPMs (swtpm/libtpms, IBM simulator) report IBM with vendor string "SW TPM"' },
  BRCM: { name: 'Broadcom', type: 'unknown', note: 'Broadcom' },
  HPE: { name: 'HPE', type: 'unknown', note: 'HPE' },
  LEN: { name: 'Lenovo', type: 'unknown', note: 'Lenovo' },
  SMSN: { name: 'Samsung', type: 'unknown', note: 'Samsung' },
  TXN: { name: 'Texas Instruments', type: 'unknown', note: 'Texas Instruments' },
  ROCC: { name: 'Fuzhou Rockchip', type: 'unknown', note: 'Rockchip' },
  TRST: { name: 'trustroot', type: 'software', note: "trustroot's software TPM" },
};

function chainOf(ek: ChainResult | EkCertificateVerification | undefined): { chain?: ChainResult; keyMatches?: boolean; leaf?: ParsedCertificate } {
  if (ek === undefined) return {};
  if ('verdict' in ek) {
    return {
      ...(ek.chain !== undefined ? { chain: ek.chain } : {}),
      ...(ek.keyMatches !== undefined ? { keyMatches: ek.keyMatches } : {}),
      ...(ek.certificate !== undefined ? { leaf: ek.certificate } : {}),
    };
  }
  const leaf = ek.path[0];
  return leaf === undefined ? { chain: ek } : { chain: ek, leaf };
}

function attributeValues(cert: ParsedCertificate, type: string): string[] {
  return [...cert.subject.rdns, ...cert.issuer.rdns].flat().filter((a) => a.type === type).map((a) => a.value);
}

/** Software-TPM markers in what the TPM reports. */
function softwareFromDescription(d: TpmDescription): ClassificationReason | undefined {
  const vendor = d.vendorString.trim();
  if (d.manufacturer === 'TRST' || /trustroot|software\s*tpm/i.test(vendor)) {
    return { code: 'software.trustroot', detail: `manufacturer "${d.manufacturer}", vendor string "${vendor}": trustroot's software TPM` };
  }
  if (d.manufacturer === 'IBM' && /^sw\s*tpm$/i.test(vendor)) {
    return { code: 'software.swtpm', detail: `manufacturer "IBM", vendor string "${vendor}": swtpm/libtpms (or IBM's TPM simulator)` };
  }
  return undefined;
}

/** Software-TPM markers in the EK certificate and its chain. */
function softwareFromCertificates(certs: readonly ParsedCertificate[]): ClassificationReason | undefined {
  for (const c of certs) {
    const cns = [...attributeValues(c, '2.5.4.3')];
    const orgs = attributeValues(c, '2.5.4.10');
    if (cns.some((cn) => /^swtpm-localca(-rootca)?$/i.test(cn.trim()))) {
      return { code: 'software.swtpm', detail: `EK certificate chain from swtpm_localca ("${c.issuer.text}")` };
    }
    if (cns.some((cn) => /^trustroot software tpm ca$/i.test(cn.trim())) && orgs.some((o) => o.trim().toLowerCase() === 'trustroot')) {
      return { code: 'software.trustroot', detail: `EK certificate issued by "${c.issuer.text}": trustroot's software TPM CA` };
    }
    if (c.tpm?.model !== undefined && /^swtpm$/i.test(c.tpm.model.trim())) {
      return { code: 'software.swtpm', detail: 'EK certificate names tpmModel "swtpm"' };
    }
  }
  return undefined;
}

function resolveProfile(p: ClassifyOptions['profile']): ClassificationProfile {
  if (p === undefined || p === 'production') return PRODUCTION_PROFILE;
  if (p === 'test') return TEST_PROFILE;
  return p;
}

/**
 * Classifies a TPM from its description and, when available, its EK
 * certificate verification (or a bare chain result, taken as belonging to
 * this TPM: the caller compared its key). See the module comment for the
 * rules; the result says which evidence decided.
 */
export function classifyTpm(description: TpmDescription, ek?: ChainResult | EkCertificateVerification, options: ClassifyOptions = {}): TpmClassification {
  const profile = resolveProfile(options.profile);
  const reasons: ClassificationReason[] = [];
  const { chain, keyMatches, leaf } = chainOf(ek);

  // Assurance: what makes the identity more than a claim.
  let assurance: TpmAssurance = 'claimed';
  if (chain?.status === 'verified' && keyMatches !== false) {
    assurance = 'verified';
    reasons.push({ code: 'chain.verified', detail: chain.detail });
  } else {
    if (chain !== undefined) reasons.push({ code: `chain.${chain.status}`, detail: `EK certificate chain ${chain.status}: ${chain.detail}` });
    if (keyMatches === false) reasons.push({ code: 'key.mismatch', detail: "the EK certificate does not certify this TPM's EK" });
    if (options.preRegistered === true) {
      assurance = 'pre-registered';
      reasons.push({ code: 'ek.pre-registered', detail: 'the EK was enrolled beforehand by the operator' });
    }
  }
  // Certificates that speak for the TPM: only when they certify its EK.
  const certs = keyMatches === false ? [] : (chain?.path ?? (leaf === undefined ? [] : [leaf]));
  const certVendorCert = keyMatches === false ? undefined : leaf;

  let type: TpmType;
  let vendor: { id: string; name: string } | undefined;
  const software = softwareFromCertificates(certs) ?? softwareFromDescription(description);
  if (software !== undefined) {
    type = 'software';
    reasons.push(software);
    const id = description.manufacturer;
    const v = VENDORS[id];
    if (v !== undefined) vendor = { id, name: v.name };
  } else {
    const claimedId = description.manufacturer;
    const certId = certVendorCert?.tpm?.vendorId;
    let id: string;
    if (certId !== undefined && certId !== claimedId) {
      reasons.push({ code: 'vendor.conflict', detail: `the TPM reports "${claimedId}", its EK certificate says "${certId}"` });
      // A verified certificate outranks the TPM's word; an unverified one settles nothing.
      id = assurance === 'verified' ? certId : '';
    } else {
      id = claimedId;
    }
    const v = id === '' ? undefined : VENDORS[id];
    if (v === undefined) {
      type = 'unknown';
      if (id !== '') reasons.push({ code: 'vendor.unknown', detail: `manufacturer "${id}" (0x${(description.manufacturerId >>> 0).toString(16).padStart(8, '0')}) is not a vendor known here` });
    } else {
      vendor = { id, name: v.name };
      type = v.type;
      // Microsoft ships both a virtual TPM and Pluton (integrated in the SoC): the vendor string or CA names tell them apart.
      const names = [description.vendorString, ...certs.flatMap((c) => [c.issuer.text, c.subject.text])].join(' ');
      if (id === 'MSFT' && /pluton/i.test(names)) {
        type = 'integrated';
        reasons.push({ code: 'vendor.known', detail: `${v.name}: Pluton security processor, integrated in the SoC (named in "${names.trim().slice(0, 120)}")` });
      } else {
        reasons.push({ code: 'vendor.known', detail: `${v.name} (${id}): ${v.note}` });
      }
      if (certId !== undefined && certId === claimedId) reasons.push({ code: 'vendor.certified', detail: `the EK certificate names the same manufacturer (${certId})` });
    }
  }

  const checks: Check[] = [];
  if (profile.allowedAssurance.includes(assurance)) {
    checks.push(
      assurance === 'claimed'
        ? warn('tpm.identity', 'identity.claimed', `the TPM's identity is only claimed; profile ${profile.name} allows it`)
        : pass('tpm.identity', `identity.${assurance}`, assurance === 'verified' ? 'EK certificate chain verified to a configured root' : 'EK pre-registered'),
    );
  } else {
    checks.push(fail('tpm.identity', `identity.${assurance}`, `profile ${profile.name} requires ${profile.allowedAssurance.join(' or ')}, the identity is ${assurance}`));
  }
  if (profile.allowedTypes.includes(type)) {
    checks.push(pass('tpm.type', 'type.allowed', `${type} TPM allowed by profile ${profile.name}`));
  } else {
    checks.push(fail('tpm.type', type === 'software' ? 'type.software-refused' : 'type.not-allowed', `profile ${profile.name} does not accept a ${type} TPM`));
  }
  const v = verdict(checks);
  return {
    type,
    assurance,
    claimed: assurance === 'claimed',
    ...(vendor !== undefined ? { vendor } : {}),
    reasons,
    accepted: v.accepted,
    verdict: v,
  };
}
