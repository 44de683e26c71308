/**
 * One movie fragment: moof + mdat (ISO/IEC 14496-12 8.8.4-8.8.12). Each traf uses
 * default-base-is-moof, so trun data offsets count from the first byte of the moof and
 * the fragment can be understood without knowing where it sits in the file.
 */
import { BoxWriter } from './boxes.js';

export interface FragmentSample {
  data: Buffer;
  /** In the track's timescale. */
  duration: number;
  /** sample_flags (8.8.3.1). */
  flags: number;
  /** Composition time minus decode time, in the track's timescale; may be negative. */
  compositionOffset: number;
}

export interface FragmentTrack {
  trackId: number;
  /** tfdt: the decode time of the first sample, in the track's timescale. */
  baseDecodeTime: number;
  samples: readonly FragmentSample[];
  /**
   * Every sample is a sync sample with no composition offset (audio): the flags go once
   * into tfhd and trun carries only durations and sizes.
   */
  allSync: boolean;
}

/** sample_depends_on 2 (depends on no other sample). */
export const SAMPLE_FLAGS_SYNC = 0x02000000;
/** sample_depends_on 1 and sample_is_non_sync_sample. */
export const SAMPLE_FLAGS_NON_SYNC = 0x01010000;

const TFHD_DEFAULT_SAMPLE_FLAGS = 0x000020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_DURATION = 0x000100;
const TRUN_SIZE = 0x000200;
const TRUN_FLAGS = 0x000400;
const TRUN_COMPOSITION_OFFSET = 0x000800;
/** trun version 1 makes sample_composition_time_offset signed (8.8.8.1): FLV's CompositionTime is SI24. */
const TRUN_VERSION_SIGNED_OFFSETS = 1;

const BOX_HEADER = 8;
/** Upper bound of the moof bytes besides the per-sample entries. */
const MOOF_FIXED = 8 + 16;
const TRAF_FIXED = 8 + 20 + 20 + 20;

/** moof + mdat in one buffer; the mdat holds the samples track by track in traf order. */
export function writeFragment(sequenceNumber: number, tracks: readonly FragmentTrack[]): Buffer {
  let dataBytes = 0;
  let entries = 0;
  for (const t of tracks) {
    for (const s of t.samples) dataBytes += s.data.length;
    entries += t.samples.length;
  }
  const w = new BoxWriter(MOOF_FIXED + tracks.length * TRAF_FIXED + entries * 16 + BOX_HEADER + dataBytes);

  w.box('moof');
  w.fullBox('mfhd', 0, 0).u32(sequenceNumber).end();
  const dataOffsetFields: number[] = [];
  for (const t of tracks) {
    w.box('traf');
    w.fullBox('tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF | (t.allSync ? TFHD_DEFAULT_SAMPLE_FLAGS : 0)).u32(t.trackId);
    if (t.allSync) w.u32(SAMPLE_FLAGS_SYNC);
    w.end();
    w.fullBox('tfdt', 1, 0).u64(t.baseDecodeTime).end();
    const perSample = t.allSync ? 0 : TRUN_FLAGS | TRUN_COMPOSITION_OFFSET;
    w.fullBox('trun', TRUN_VERSION_SIGNED_OFFSETS, TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | perSample);
    w.u32(t.samples.length);
    dataOffsetFields.push(w.position);
    w.i32(0); // patched below, once the moof's size is known
    for (const s of t.samples) {
      w.u32(s.duration).u32(s.data.length);
      if (!t.allSync) w.u32(s.flags).i32(s.compositionOffset);
    }
    w.end(); // trun
    w.end(); // traf
  }
  w.end(); // moof

  const moofSize = w.position;
  let offset = moofSize + BOX_HEADER;
  tracks.forEach((t, i) => {
    w.patchU32(dataOffsetFields[i] as number, offset);
    for (const s of t.samples) offset += s.data.length;
  });
  w.box('mdat');
  for (const t of tracks) for (const s of t.samples) w.bytes(s.data);
  w.end();
  return w.finish();
}
