/** Part 3 §12.9 LoadExternal, §12.15 CreateLoaded and §13.3 Import. */
import type { CommandHandler } from './handler.js';

export const IMPORT_HANDLERS: readonly CommandHandler[] = [];
