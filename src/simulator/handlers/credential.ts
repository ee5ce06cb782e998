/** Part 3 §12.5–§12.6 ActivateCredential and MakeCredential. */
import type { CommandHandler } from './handler.js';

export const CREDENTIAL_HANDLERS: readonly CommandHandler[] = [];
