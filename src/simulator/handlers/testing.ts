/** Part 3 §10 "Testing": the engine's algorithms are node:crypto's and need no self-test, so every test passes at once. */
import { GetTestResult, IncrementalSelfTest, SelfTest } from '../../tpm/commands/index.js';
import { TPM_RC } from '../../tpm/rc.js';
import { handler, ok } from './handler.js';

export const selfTestHandler = handler(SelfTest, () => ok<typeof SelfTest>({}));

/** Part 3 §10.3: the toDoList is empty when everything asked for has been tested. */
export const incrementalSelfTestHandler = handler(IncrementalSelfTest, () => ok<typeof IncrementalSelfTest>({ toDoList: [] }));

export const getTestResultHandler = handler(GetTestResult, () => ok<typeof GetTestResult>({ outData: new Uint8Array(0), testResult: TPM_RC.SUCCESS }));
