/** TPM transports: swtpm and MS simulator over TCP, and an in-process adapter. */
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  TransportControlError,
  inProcessTransport,
  type InProcessOptions,
  type InProcessTpm,
  type SendOptions,
  type Transport,
} from './transport.js';
export {
  SWTPM_CTRL,
  SWTPM_INFO_ATTRIBUTES,
  SWTPM_INFO_SPEC,
  SWTPM_INIT_DELETE_VOLATILE,
  SwtpmControl,
  SwtpmTransport,
  type SwtpmBufferSize,
  type SwtpmControlOptions,
  type SwtpmTransportOptions,
} from './swtpm.js';
export {
  MSSIM_SIGNAL,
  MssimPlatform,
  MssimTransport,
  type MssimPlatformOptions,
  type MssimTransportOptions,
} from './mssim.js';
export type { Deadline } from './channel.js';
