import { describe, expect, it } from 'vitest';
import { toAnnexB } from '../../src/protocol/mpegts/annexb.js';
import { h264Rules } from '../../src/protocol/mpegts/demux-h264.js';
import { AnnexBVideoConverter } from '../../src/protocol/mpegts/demux-video.js';
import { parseAvcConfig } from '../../src/protocol/mpegts/mux-video-config.js';

// Hostile parameter sets must not multiply a stream's size on its way through the relay:
// TS in -> FLV tags (SRT ingest), FLV tags -> TS out (SRT outputs). Real streams keep
// their parameter sets everywhere they belong.

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');
const SC = hex('00000001');
const SPS = hex('6764001eacd940');
const PPS = hex('68ebecb22c');
const IDR = hex('658880');

/** An Annex B access unit of these NAL units. */
const accessUnit = (...nals: Buffer[]): Buffer => Buffer.concat(nals.flatMap((n) => [SC, n]));
/** A PPS with id 0 and `filler` extra bytes, so each one differs from the last. */
const pps = (variant: number, filler = 0): Buffer => Buffer.concat([PPS, Buffer.from([variant & 0xff]), Buffer.alloc(filler, 0x55)]);
/** A large SPS (same id 0): profile, level and a long tail the record carries verbatim. */
const bigSps = Buffer.concat([SPS, Buffer.alloc(20_000, 0xaa)]);
/** A 4-byte-length AVCC frame of these NAL units. */
const avccFrame = (...nals: Buffer[]): Buffer => Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, n.length >> 8, n.length & 0xff]), n]));

describe('TS -> FLV: sequence headers are paid for by the input', () => {
  it('a first header comes with the first keyframe, and a real change after frames goes out at once', () => {
    const converter = new AnnexBVideoConverter(h264Rules);
    const first = converter.convert(accessUnit(SPS, PPS, IDR), 0);
    expect(first.sequenceHeader).toBeDefined();
    expect(first.frame).toBeDefined();
    for (let i = 0; i < 10; i++) expect(converter.convert(accessUnit(hex('419a'), Buffer.alloc(1000, 0x11)), 40).sequenceHeader).toBeUndefined();
    const changed = converter.convert(accessUnit(SPS, pps(1), IDR), 80);
    expect(changed.sequenceHeader).toBeDefined();
    expect(changed.sequenceHeader!.includes(pps(1))).toBe(true);
  });

  it('one large SPS, then a changed PPS per access unit: header bytes stay within the input bytes', () => {
    const converter = new AnnexBVideoConverter(h264Rules);
    let input = 0;
    let output = 0;
    let headers = 0;
    let lastHeader: Buffer | undefined;
    const feed = (au: Buffer): void => {
      input += au.length;
      const out = converter.convert(au, 0);
      if (out.sequenceHeader) {
        headers += 1;
        lastHeader = out.sequenceHeader;
      }
      output += (out.sequenceHeader?.length ?? 0) + (out.frame?.length ?? 0);
    };
    feed(accessUnit(bigSps, pps(0), IDR));
    expect(headers).toBe(1);
    for (let i = 1; i <= 500; i++) feed(accessUnit(pps(i)));
    // Unbounded, this was 500 headers of 20 kB from 500 access units of 13 bytes.
    expect(output).toBeLessThanOrEqual(2 * input + 64);
    expect(headers).toBeLessThan(5);
    // The last change is not lost: it goes out once the stream has paid for it.
    for (let i = 0; i < 40; i++) feed(accessUnit(hex('419a'), Buffer.alloc(1000, 0x22)));
    expect(lastHeader!.includes(pps(500))).toBe(true);
    expect(output).toBeLessThanOrEqual(2 * input + 64);
  });
});

describe('FLV -> TS: parameter sets repeated before keyframes are bounded by the frame', () => {
  const config = (sps: Buffer, ppsUnit: Buffer) =>
    parseAvcConfig(Buffer.concat([hex('01 64001e ff e1'), Buffer.from([sps.length >> 8, sps.length & 0xff]), sps, hex('01'), Buffer.from([ppsUnit.length >> 8, ppsUnit.length & 0xff]), ppsUnit]));

  it('real parameter sets go before every keyframe, however small the frame', () => {
    const cfg = config(SPS, PPS);
    const unit = toAnnexB(avccFrame(IDR), 4, 'avc', cfg.parameterSets, true);
    expect(Buffer.concat(unit.segments).includes(cfg.parameterSets)).toBe(true);
  });

  it('HEVC parameter sets of a real encoder go before a tiny IRAP picture', () => {
    // x265's VPS, SPS and PPS for 640x360 (83 bytes with start codes) before a 116-byte IDR.
    const sets = Buffer.concat([SC, Buffer.alloc(24, 0x40), SC, Buffer.alloc(38, 0x42), SC, Buffer.alloc(9, 0x44)]);
    const idrNal = Buffer.concat([Buffer.from([0x26, 0x01]), Buffer.alloc(110, 0x77)]);
    const unit = toAnnexB(avccFrame(idrNal), 4, 'hevc', sets, true);
    expect(unit.randomAccess).toBe(true);
    expect(Buffer.concat(unit.segments).includes(sets)).toBe(true);
  });

  it('a 20 kB sequence header is not repeated before a tiny keyframe, and is before a large one', () => {
    const cfg = config(bigSps, PPS);
    const tiny = toAnnexB(avccFrame(IDR), 4, 'avc', cfg.parameterSets, true);
    expect(tiny.length).toBeLessThan(100);
    const large = toAnnexB(avccFrame(Buffer.concat([IDR, Buffer.alloc(50_000, 0x33)])), 4, 'avc', cfg.parameterSets, true);
    expect(Buffer.concat(large.segments).includes(cfg.parameterSets)).toBe(true);
  });
});
