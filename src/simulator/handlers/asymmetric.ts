/** Part 3 §14 Asymmetric Primitives (RSA_Encrypt, RSA_Decrypt, ECDH_KeyGen, ECDH_ZGen) and §20.1 VerifySignature. */
import type { CommandHandler } from './handler.js';

export const ASYMMETRIC_HANDLERS: readonly CommandHandler[] = [];
