/**
 * What an MP4 AAC track needs from the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1):
 * the record itself (the esds DecoderSpecificInfo, verbatim), and the sample rate and
 * channel count that the mp4a sample entry and the track timescale state.
 */
import { ProtocolError } from '../../lib/errors.js';
import { parseAudioSpecificConfig, SAMPLING_RATES } from '../mpegts/adts.js';

export interface Mp4AudioConfig {
  asc: Buffer;
  /**
   * The AAC core's rate. For HE-AAC with explicit SBR signalling that is half the output
   * rate; a core frame is still 1024 samples at this rate, so it serves as the timescale.
   */
  sampleRate: number;
  channelCount: number;
}

/**
 * channelConfiguration to channels (table 1.19). 0 means a program_config_element says,
 * which only the decoder reads; stereo is the usual answer and the entry is advisory.
 */
const CHANNELS = [2, 1, 2, 3, 4, 5, 6, 8];

/** Throws FLV_MALFORMED for a truncated ASC or one that is not AAC (Main, LC, SSR, LTP, +SBR/PS). */
export function mp4AudioConfig(asc: Buffer): Mp4AudioConfig {
  const parsed = parseAudioSpecificConfig(asc);
  const sampleRate = parsed === undefined ? undefined : SAMPLING_RATES[parsed.samplingFrequencyIndex];
  if (parsed === undefined || sampleRate === undefined) {
    throw new ProtocolError('FLV_MALFORMED', 'audio sequence header: not an AAC AudioSpecificConfig this muxer can carry');
  }
  return { asc, sampleRate, channelCount: CHANNELS[parsed.channelConfiguration] ?? 2 };
}
