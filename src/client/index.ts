/**
 * trustroot/client — a typed TPM 2.0 client over the core: `Tpm` runs any
 * declared command with typed handles, parameters and authorization sessions
 * (password, HMAC, policy, trial; bound, salted, parameter encryption, audit).
 */
export {
  Tpm,
  type Authorization,
  type Entity,
  type Flushable,
  type FlushScope,
  type Handle,
  type RunHandles,
  type StartAuthSessionOptions,
  type TpmRunOptions,
  type TpmRunResult,
} from './tpm.js';
export { AuthSession, password, PasswordSession, type SessionAttributes, type SessionType, type SessionUse } from './session.js';
