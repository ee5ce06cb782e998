/**
 * Random bytes drawn from node:crypto a block at a time: a call into OpenSSL
 * per nonce cost a quarter of a simple command's time (the simulator engine's
 * nonces, the client's nonceCaller), so small requests are served from the
 * block; large ones go straight to randomBytes.
 */
import { randomBytes } from 'node:crypto';

/** A source of secret bytes. */
export type RandomSource = (size: number) => Uint8Array;

/**
 * A pooled source for one user (an engine, a client): each byte is handed out
 * once and wiped from the block as it goes.
 */
export function pooledRandomSource(blockSize = 4096): RandomSource {
  let block: Uint8Array = new Uint8Array(0);
  let at = 0;
  return (size) => {
    if (size > blockSize / 4) return new Uint8Array(randomBytes(size));
    if (at + size > block.length) {
      block = new Uint8Array(randomBytes(blockSize));
      at = 0;
    }
    const out = block.slice(at, at + size);
    block.fill(0, at, at + size);
    at += size;
    return out;
  };
}
