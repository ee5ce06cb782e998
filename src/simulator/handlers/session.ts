/** Part 3 §11 Session Commands (StartAuthSession, PolicyRestart) and §28 Context Management (ContextSave, ContextLoad). */
import type { CommandHandler } from './handler.js';

export const SESSION_HANDLERS: readonly CommandHandler[] = [];
