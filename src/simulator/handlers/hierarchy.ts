/** Part 3 §24–§25 Hierarchy Commands and Dictionary Attack Functions; §28.5 EvictControl. */
import type { CommandHandler } from './handler.js';

export const HIERARCHY_HANDLERS: readonly CommandHandler[] = [];
