/** Part 3 §18 Attestation Commands (Certify, CertifyCreation, Quote, GetTime) and §31.16 NV_Certify. */
import type { CommandHandler } from './handler.js';

export const ATTESTATION_HANDLERS: readonly CommandHandler[] = [];
