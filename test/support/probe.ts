/**
 * Test helpers for client suites: a transport wrapper that counts commands by
 * code, keeps the last exchange, and can play a lying TPM (rewrite the next response to one command),
 * and a helper that returns a promise's rejection.
 */
import type { SendOptions, Transport } from '../../src/tpm/transport/index.js';
import { TpmError } from '../../src/tpm/rc.js';

/** The error `p` rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** The TpmError `p` rejects with; anything else (a success, another error) fails the test. */
export async function tpmRejection(p: Promise<unknown>): Promise<TpmError> {
  const e = await rejection(p);
  if (e instanceof TpmError) return e;
  throw e;
}

/** Counts commands by command code, keeps the last command and response, and rewrites the next response to the command code given in `edit`. */
export class WireProbe implements Transport {
  readonly inner: Transport;
  readonly counts = new Map<number, number>();
  /** Applied once, to the next response to a command with code `cc`. */
  edit: { cc: number; fn: (response: Uint8Array) => Uint8Array } | undefined;
  /** The last command sent and the response it got (as returned to the caller). */
  last: { readonly command: Uint8Array; readonly response: Uint8Array } | undefined;

  constructor(inner: Transport) {
    this.inner = inner;
  }

  async send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    const cc = new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(6);
    this.counts.set(cc, (this.counts.get(cc) ?? 0) + 1);
    let response = await this.inner.send(command, options);
    const edit = this.edit;
    if (edit !== undefined && edit.cc === cc) {
      this.edit = undefined;
      response = edit.fn(response.slice());
    }
    this.last = { command, response };
    return response;
  }

  /** Commands with code `cc` sent so far. */
  count(cc: number): number {
    return this.counts.get(cc) ?? 0;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The response code `p` fails with (TpmError.rc), or 0 when it succeeds; any other error fails the test. */
export async function rcOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TpmError) return e.rc;
    throw e;
  }
  return 0;
}
