/** Part 3 §15 Symmetric Primitives (EncryptDecrypt, EncryptDecrypt2, Hash, HMAC) and §17 Hash/HMAC/Event Sequences. */
import type { CommandHandler } from './handler.js';

export const SYMMETRIC_HANDLERS: readonly CommandHandler[] = [];
