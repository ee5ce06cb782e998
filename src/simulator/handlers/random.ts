/** Part 3 §16 "Random Number Generator". */
import { GetRandom, StirRandom } from '../../tpm/commands/index.js';
import { LIMITS } from '../../tpm/limits.js';
import { handler, ok } from './handler.js';

/** Part 3 §16.1: at most a digest's worth (the largest digest the TPM implements: SHA-512, 64 bytes). */
export const getRandomHandler = handler(GetRandom, ({ engine }, _h, { bytesRequested }) =>
  ok<typeof GetRandom>({ randomBytes: engine.random(Math.min(bytesRequested, LIMITS.MAX_DIGEST)) }),
);

/** Part 3 §16.2: node:crypto's generator reseeds itself from the OS; the caller's bytes add nothing it needs. */
export const stirRandomHandler = handler(StirRandom, () => ok<typeof StirRandom>({}));
