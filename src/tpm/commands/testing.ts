/**
 * Part 3 §10 "Testing".
 */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_MAX_BUFFER, TPMI_YES_NO, TPML_ALG, TPM_RC } from '../types/index.js';

/** Runs the self-tests: all of them, or only those not yet run. */
export const SelfTest = command({
  name: 'SelfTest',
  code: TPM_CC.SelfTest,
  spec: 'Part 3 §10.2',
  handles: {},
  params: { fullTest: TPMI_YES_NO },
  responseHandles: {},
  response: {},
});

/** Tests the listed algorithms; returns those that still need testing. */
export const IncrementalSelfTest = command({
  name: 'IncrementalSelfTest',
  code: TPM_CC.IncrementalSelfTest,
  spec: 'Part 3 §10.3',
  handles: {},
  params: { toTest: TPML_ALG },
  responseHandles: {},
  response: { toDoList: TPML_ALG },
});

/** Returns the manufacturer-specific self-test result and its response code. */
export const GetTestResult = command({
  name: 'GetTestResult',
  code: TPM_CC.GetTestResult,
  spec: 'Part 3 §10.4',
  handles: {},
  params: {},
  responseHandles: {},
  response: { outData: TPM2B_MAX_BUFFER, testResult: TPM_RC },
});
