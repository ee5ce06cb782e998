/** Every implemented command's handler, grouped like Part 3's chapters. */
import type { CommandHandler } from './handler.js';
import { getCapabilityHandler } from './capability.js';
import { readClockHandler } from './clock.js';
import { pcrEventHandler, pcrExtendHandler, pcrReadHandler, pcrResetHandler } from './integrity.js';
import { nvDefineSpaceHandler, nvExtendHandler, nvIncrementHandler, nvReadHandler, nvReadLockHandler, nvReadPublicHandler, nvSetBitsHandler, nvUndefineSpaceHandler, nvWriteHandler, nvWriteLockHandler } from './nv.js';
import { getRandomHandler, stirRandomHandler } from './random.js';
import { createHandler, createPrimaryHandler, flushContextHandler, loadHandler, readPublicHandler, signHandler } from './object.js';
import { shutdownHandler, startupHandler } from './startup.js';
import { getTestResultHandler, incrementalSelfTestHandler, selfTestHandler } from './testing.js';

export const IMPLEMENTED_HANDLERS: readonly CommandHandler[] = [
  startupHandler, // §9
  shutdownHandler,
  selfTestHandler, // §10
  incrementalSelfTestHandler,
  getTestResultHandler,
  getRandomHandler, // §16
  stirRandomHandler,
  pcrExtendHandler, // §22
  pcrEventHandler,
  pcrReadHandler,
  pcrResetHandler,
  readClockHandler, // §29
  getCapabilityHandler, // §30
  ...[nvDefineSpaceHandler, nvUndefineSpaceHandler, nvReadPublicHandler, nvWriteHandler, nvIncrementHandler, nvExtendHandler, nvSetBitsHandler, nvWriteLockHandler, nvReadHandler, nvReadLockHandler], // §31
  ...[createHandler, loadHandler, readPublicHandler, signHandler, createPrimaryHandler, flushContextHandler], // §12, §20, §24, §28 (object.ts)
] as unknown as readonly CommandHandler[];
