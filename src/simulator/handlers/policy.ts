/** Part 3 §23 Enhanced Authorization (EA) Commands. */
import type { CommandHandler } from './handler.js';

export const POLICY_HANDLERS: readonly CommandHandler[] = [];
