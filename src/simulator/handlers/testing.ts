/** Part 3 §10 "Testing": the engine's algorithms are node:crypto's and need no self-test, so every test passes at once. */
import { GetTestResult, IncrementalSelfTest, SelfTest } from '../../tpm/commands/index.js';
import { TPM_RC, TpmError, rcForParameter } from '../../tpm/rc.js';
import { profileAlgorithms } from '../algorithms.js';
import { handler, ok } from './handler.js';

export const selfTestHandler = handler(SelfTest, () => ok<typeof SelfTest>({}));

/**
 * Part 3 §10.3: the toDoList is empty when everything asked for has been
 * tested; an algorithm this TPM does not implement is TPM_RC_VALUE on toTest
 * (the reference's CryptIncrementalSelfTest, as libtpms answers).
 */
export const incrementalSelfTestHandler = handler(IncrementalSelfTest, ({ engine }, _h, { toTest }) => {
  const implemented = profileAlgorithms(engine.profile);
  if (toTest.some((alg) => !implemented.has(alg))) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  return ok<typeof IncrementalSelfTest>({ toDoList: [] });
});

export const getTestResultHandler = handler(GetTestResult, () => ok<typeof GetTestResult>({ outData: new Uint8Array(0), testResult: TPM_RC.SUCCESS }));
