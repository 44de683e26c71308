import type { ContainerInput, ContainerMuxer } from '../protocol/container.js';
import { FlvFileMuxer } from '../protocol/flv/file-muxer.js';
import { Fmp4Muxer } from '../protocol/mp4/fmp4-muxer.js';
import { TsMuxer } from '../protocol/mpegts/muxer.js';
import type { RecordingFormat } from './recording-index.js';

/** MPEG-TS needs no finalisation and holds nothing back: the SRT muxer as it is. */
class TsFileMuxer implements ContainerMuxer {
  private readonly muxer = new TsMuxer();

  get counters(): { skipped: number } {
    return { skipped: this.muxer.counters.skipped };
  }

  push(message: ContainerInput): Buffer[] {
    if (message.kind === 'data') return [];
    const ts = this.muxer.mux(message);
    return ts.length > 0 ? [ts] : [];
  }

  flush(): Buffer[] {
    return [];
  }
}

/** A fresh muxer for one file. */
export function createContainerMuxer(format: RecordingFormat): ContainerMuxer {
  switch (format) {
    case 'mp4':
      return new Fmp4Muxer();
    case 'flv':
      return new FlvFileMuxer();
    case 'mpegts':
      return new TsFileMuxer();
  }
}
