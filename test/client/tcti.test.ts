/**
 * TCTI connection strings: the parser (examples, refusals, fast-check over
 * random and mutated strings, round trips), the registry, the environment
 * default, and openTransport against swtpm in both framings, with the same
 * string also given to tpm2-tools.
 */
import { execFile } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryTransport } from '../../src/client/retry.js';
import {
  TCTI_DEFAULT,
  formatTcti,
  openTransport,
  parseTcti,
  parseTctiKeyValues,
  registerTcti,
  resolveTcti,
  splitTcti,
  tctiSchemes,
  unregisterTcti,
  type TctiConfig,
} from '../../src/client/tcti.js';
import { GetRandom, Startup } from '../../src/tpm/commands/index.js';
import { TPM_SU } from '../../src/tpm/constants.js';
import { TctiError, TransportError } from '../../src/tpm/errors.js';
import { encodeErrorResponse, encodeResponse } from '../../src/tpm/frame.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, MssimTransport, SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

function tctiError(f: () => unknown, code: TctiError['code'] = 'tcti.invalid'): TctiError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a TctiError').toBeInstanceOf(TctiError);
  expect((caught as TctiError).code).toBe(code);
  return caught as TctiError;
}

describe('TCTI strings: parsing', () => {
  it('reads the tpm2-tss forms with tpm2-tss defaults', () => {
    expect(parseTcti('device')).toEqual({ kind: 'device', scheme: 'device', path: '/dev/tpmrm0' });
    expect(parseTcti('device:')).toEqual({ kind: 'device', scheme: 'device', path: '/dev/tpmrm0' });
    expect(parseTcti('device:/dev/tpm0')).toEqual({ kind: 'device', scheme: 'device', path: '/dev/tpm0' });
    expect(parseTcti('swtpm')).toEqual({ kind: 'tcp', scheme: 'swtpm', host: 'localhost', port: 2321 });
    expect(parseTcti('swtpm:')).toEqual({ kind: 'tcp', scheme: 'swtpm', host: 'localhost', port: 2321 });
    expect(parseTcti('swtpm:host=127.0.0.1,port=2400')).toEqual({ kind: 'tcp', scheme: 'swtpm', host: '127.0.0.1', port: 2400 });
    expect(parseTcti('swtpm:port=2400')).toEqual({ kind: 'tcp', scheme: 'swtpm', host: 'localhost', port: 2400 });
    expect(parseTcti('mssim:host=tpm.example.org')).toEqual({ kind: 'tcp', scheme: 'mssim', host: 'tpm.example.org', port: 2321 });
    // Only the first ':' splits, so IPv6 hosts need no brackets.
    expect(parseTcti('mssim:host=::1,port=65535')).toEqual({ kind: 'tcp', scheme: 'mssim', host: '::1', port: 65535 });
    // Empty pairs are skipped, as strtok does; whitespace around the whole string is ignored.
    expect(parseTcti('  swtpm:,port=5,,host=a-b.c, \n')).toEqual({ kind: 'tcp', scheme: 'swtpm', host: 'a-b.c', port: 5 });
    expect(parseTcti('sim:seed=abc,profile=x')).toEqual({ kind: 'custom', scheme: 'sim', conf: 'seed=abc,profile=x' });
    expect(splitTcti('tabrmd:bus_type=session')).toEqual({ scheme: 'tabrmd', conf: 'bus_type=session' });
  });

  it('refuses malformed strings with tcti.invalid, naming the problem', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['   ', /empty/],
      [':port=1', /name before ":" is missing/],
      ['Device:/dev/tpm0', /not a TCTI name/],
      ['dev ice', /not a TCTI name/],
      ['device:dev/tpm0', /not absolute/],
      ['device:/dev/tpm 0', /spaces or control/],
      ['device:/dev/tpm0\u0000', /spaces or control/],
      ['swtpm:port=0', /outside 1\.\.65534/],
      ['swtpm:port=65535', /outside 1\.\.65534/], // its control port would be 65536
      ['mssim:port=65536', /outside 1\.\.65535/],
      ['swtpm:port=2321x', /not a number/],
      ['swtpm:port=-1', /not a number/],
      ['swtpm:port=', /has no value/],
      ['swtpm:host=', /has no value/],
      ['swtpm:port', /not key=value/],
      ['swtpm:=5', /not key=value/],
      ['swtpm:port=1,port=2', /given twice/],
      ['swtpm:hots=x', /unknown key "hots"/],
      ['swtpm:path=/run/swtpm.sock', /unix sockets/],
      ['swtpm:host=a..b', /not a host name/],
      ['swtpm:host=-a.b', /not a host name/],
      ['swtpm:host=[::1]', /not a host name/],
      [`swtpm:host=${'a'.repeat(256)}`, /longer than 255/],
      [`device:/${'x'.repeat(5000)}`, /longer than 4095/],
    ];
    for (const [s, why] of cases) {
      const err = tctiError(() => parseTcti(s));
      expect(err.message, s).toMatch(why);
      expect(err.tcti.length).toBeLessThanOrEqual(257);
    }
  });

  it('never throws anything but a TctiError, whatever the string (fast-check)', () => {
    const check = (s: string): void => {
      try {
        const c = parseTcti(s);
        // Whatever parses, formats back to a string that parses to the same thing.
        expect(parseTcti(formatTcti(c))).toEqual(c);
      } catch (e) {
        if (!(e instanceof TctiError)) throw e;
        expect(['tcti.invalid']).toContain(e.code);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 200 }), check), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 100 }), check), { numRuns: 1000 });
    // Near misses: valid strings with a few characters changed, inserted or removed.
    const valid = fc.constantFrom('device:/dev/tpmrm0', 'swtpm:host=127.0.0.1,port=2321', 'mssim:host=::1,port=5', 'swtpm', 'device');
    const alphabet = fc.constantFrom(...':,=/. -_0123456789aZ\u0000\n\u00e9\ud83d'.split(''));
    fc.assert(
      fc.property(valid, fc.array(fc.tuple(fc.nat(), alphabet, fc.boolean()), { maxLength: 4 }), (base, edits) => {
        let s: string = base;
        for (const [at, ch, insert] of edits) {
          const i = at % (s.length + 1);
          s = insert ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + ch + s.slice(i + 1);
        }
        check(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('formats every valid configuration to a string that parses back to it (fast-check)', () => {
    const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.constant('localhost'));
    const tcp = fc.record({
      kind: fc.constant('tcp' as const),
      scheme: fc.constantFrom('swtpm' as const, 'mssim' as const),
      host,
      port: fc.integer({ min: 1, max: 65534 }),
    });
    const device = fc.record({
      kind: fc.constant('device' as const),
      scheme: fc.constant('device' as const),
      path: fc.stringMatching(/^\/[A-Za-z0-9_./:-]{0,60}$/),
    });
    fc.assert(
      fc.property(fc.oneof(tcp, device), (c: TctiConfig) => {
        expect(parseTcti(formatTcti(c))).toEqual(c);
      }),
      { numRuns: 1000 },
    );
  });

  it('key/value confs for custom schemes follow the same rules', () => {
    expect([...parseTctiKeyValues('a=1,,b=x=y', ['a', 'b'])]).toEqual([
      ['a', '1'],
      ['b', 'x=y'],
    ]);
    tctiError(() => parseTctiKeyValues('c=1', ['a']));
    tctiError(() => parseTctiKeyValues('a=1,a=2', ['a']));
  });
});

describe('TCTI strings: environment and registry', () => {
  it('takes the argument, else TRUSTROOT_TPM, else TPM2TOOLS_TCTI, else device:/dev/tpmrm0', () => {
    expect(resolveTcti('swtpm', { TRUSTROOT_TPM: 'mssim' })).toEqual({ tcti: 'swtpm', source: 'argument' });
    expect(resolveTcti(undefined, { TRUSTROOT_TPM: 'mssim', TPM2TOOLS_TCTI: 'swtpm' })).toEqual({ tcti: 'mssim', source: 'TRUSTROOT_TPM' });
    expect(resolveTcti(undefined, { TRUSTROOT_TPM: ' ', TPM2TOOLS_TCTI: 'swtpm:port=9' })).toEqual({ tcti: 'swtpm:port=9', source: 'TPM2TOOLS_TCTI' });
    expect(resolveTcti(undefined, {})).toEqual({ tcti: TCTI_DEFAULT, source: 'default' });
    expect(TCTI_DEFAULT).toBe('device:/dev/tpmrm0');
  });

  it('a registered scheme opens through its factory; names, duplicates and unknown schemes are refused', async () => {
    const seen: TctiConfig[] = [];
    const fake: Transport = inProcessTransport({
      execute: (cmd) => Promise.resolve(encodeResponse(GetRandom, {}, { randomBytes: new Uint8Array(cmd[cmd.length - 1]!) })),
    });
    registerTcti('sim', (config, options) => {
      seen.push(config);
      expect(options).toEqual({ timeoutMs: 1234 });
      return fake;
    });
    try {
      expect(tctiSchemes()).toEqual(['device', 'mssim', 'sim', 'swtpm']);
      const t = await openTransport('sim:profile=iot', { timeoutMs: 1234, retry: false });
      expect(t).toBe(fake);
      expect(seen).toEqual([{ kind: 'custom', scheme: 'sim', conf: 'profile=iot' }]);
      expect((await runCommand(t, GetRandom, {}, { bytesRequested: 5 })).params.randomBytes.length).toBe(5);
      // With retry (the default) the factory's transport is wrapped.
      const wrapped = await openTransport(undefined, { env: { TRUSTROOT_TPM: 'sim' }, timeoutMs: 1234 });
      expect(wrapped).toBeInstanceOf(RetryTransport);
      expect((wrapped as RetryTransport).inner).toBe(fake);

      tctiError(() => registerTcti('sim', () => fake), 'tcti.scheme');
      tctiError(() => registerTcti('Sim', () => fake), 'tcti.scheme');
      tctiError(() => registerTcti('', () => fake), 'tcti.scheme');
      tctiError(() => registerTcti('x:y', () => fake), 'tcti.scheme');
    } finally {
      expect(unregisterTcti('sim')).toBe(true);
    }
    expect(unregisterTcti('sim')).toBe(false);
    const err = await openTransport('sim:x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TctiError);
    expect((err as TctiError).code).toBe('tcti.scheme');
    expect((err as TctiError).message).toMatch(/known: device, mssim, swtpm/);
    const fromEnv = await openTransport(undefined, { env: { TPM2TOOLS_TCTI: 'tabrmd:bus_type=session' } }).catch((e: unknown) => e);
    expect((fromEnv as TctiError).message).toMatch(/"tabrmd" \(from TPM2TOOLS_TCTI\)/);
  });

  it('a built-in scheme can be replaced and restored', async () => {
    const fake = inProcessTransport({ execute: () => Promise.resolve(encodeErrorResponse(TPM_RC.SUCCESS)) });
    tctiError(() => registerTcti('device', () => fake), 'tcti.scheme');
    registerTcti('device', () => fake, { replace: true });
    try {
      expect(await openTransport('device:/dev/tpmrm0', { retry: false })).toBe(fake);
    } finally {
      expect(unregisterTcti('device')).toBe(true);
    }
    expect(unregisterTcti('device')).toBe(false);
    expect(tctiSchemes()).toContain('device');
  });

  it('the default device opens eagerly: a missing device is a typed error at openTransport', async () => {
    const err = await openTransport('device:/nonexistent/trustroot-tpmrm0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('transport.connect');
    // A malformed string never reaches a factory.
    const bad = await openTransport('swtpm:port=0').catch((e: unknown) => e);
    expect((bad as TctiError).code).toBe('tcti.invalid');
  });
});

describeEachTpm('TCTI strings against a TCP TPM', (kind) => {
  let sw: TpmUnderTest;

  beforeAll(async () => {
    sw = await startTpm(kind);
    const t = new SwtpmTransport({ port: sw.port });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    await t.close();
  });
  afterAll(async () => {
    await sw?.stop();
  });

  for (const scheme of ['swtpm', 'mssim'] as const) {
    it(`${scheme}:host=…,port=… opens a working transport of that framing`, async () => {
      const t = await openTransport(`${scheme}:host=127.0.0.1,port=${sw.port}`, { retry: false });
      try {
        expect(t).toBeInstanceOf(scheme === 'swtpm' ? SwtpmTransport : MssimTransport);
        const r = await runCommand(t, GetRandom, {}, { bytesRequested: 24 });
        expect(r.params.randomBytes.length).toBe(24);
      } finally {
        await t.close();
      }
    });
  }

  it('TRUSTROOT_TPM with the default host (localhost) reaches the TPM, through the retry wrapper', async () => {
    const t = await openTransport(undefined, { env: { TRUSTROOT_TPM: `swtpm:port=${sw.port}`, TPM2TOOLS_TCTI: 'device:/nonexistent' } });
    try {
      expect(t).toBeInstanceOf(RetryTransport);
      expect((await runCommand(t, GetRandom, {}, { bytesRequested: 8 })).params.randomBytes.length).toBe(8);
    } finally {
      await t.close();
    }
  });

  it('tpm2-tools accepts the same string (tpm2_getrandom -T)', async () => {
    const tcti = formatTcti(parseTcti(`swtpm:host=127.0.0.1,port=${sw.port}`));
    // Not spawnSync: the simulator's server runs in this process and must keep answering meanwhile.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile('tpm2_getrandom', ['-T', tcti, '--hex', '16'], { encoding: 'utf8', timeout: 20_000 }, (e, stdout, stderr) =>
        resolve({ status: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr }),
      );
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
  });
});
