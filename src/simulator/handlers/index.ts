/** Every implemented command's handler, grouped like Part 3's chapters. */
import type { CommandHandler } from './handler.js';
import { ASYMMETRIC_HANDLERS } from './asymmetric.js';
import { ATTESTATION_HANDLERS } from './attestation.js';
import { AUDIT_HANDLERS } from './audit.js';
import { CREDENTIAL_HANDLERS } from './credential.js';
import { DUPLICATION_HANDLERS } from './duplication.js';
import { ECC_HANDLERS } from './ecc.js';
import { HIERARCHY_HANDLERS } from './hierarchy.js';
import { IMPORT_HANDLERS } from './import.js';
import { POLICY_HANDLERS } from './policy.js';
import { SESSION_HANDLERS } from './session.js';
import { SYMMETRIC_HANDLERS } from './symmetric.js';
import { getCapabilityHandler, testParmsHandler } from './capability.js';
import { CLOCK_HANDLERS, readClockHandler } from './clock.js';
import { PCR_ADMIN_HANDLERS, pcrEventHandler, pcrExtendHandler, pcrReadHandler, pcrResetHandler } from './integrity.js';
import { NV_ADMIN_HANDLERS, nvDefineSpaceHandler, nvExtendHandler, nvIncrementHandler, nvReadHandler, nvGlobalWriteLockHandler, nvReadLockHandler, nvReadPublicHandler, nvSetBitsHandler, nvUndefineSpaceHandler, nvWriteHandler, nvWriteLockHandler } from './nv.js';
import { getRandomHandler, stirRandomHandler } from './random.js';
import { createHandler, createPrimaryHandler, flushContextHandler, loadHandler, readPublicHandler } from './object.js';
import { signHandler } from './signing.js';
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
  testParmsHandler,
  ...[nvDefineSpaceHandler, nvUndefineSpaceHandler, nvReadPublicHandler, nvWriteHandler, nvIncrementHandler, nvExtendHandler, nvSetBitsHandler, nvWriteLockHandler, nvGlobalWriteLockHandler, nvReadHandler, nvReadLockHandler], // §31
  ...[createHandler, loadHandler, readPublicHandler, signHandler, createPrimaryHandler, flushContextHandler], // §12, §20, §24, §28 (object.ts)
  // Each area's file exports its handlers as one array.
  ...SESSION_HANDLERS,
  ...POLICY_HANDLERS,
  ...HIERARCHY_HANDLERS,
  ...ATTESTATION_HANDLERS,
  ...CREDENTIAL_HANDLERS,
  ...SYMMETRIC_HANDLERS,
  ...ASYMMETRIC_HANDLERS,
  ...IMPORT_HANDLERS,
  ...AUDIT_HANDLERS,
  ...DUPLICATION_HANDLERS,
  ...ECC_HANDLERS,
  ...PCR_ADMIN_HANDLERS,
  ...CLOCK_HANDLERS,
  ...NV_ADMIN_HANDLERS,
] as unknown as readonly CommandHandler[];
