/**
 * CRC-32/MPEG-2, the CRC_32 of PSI sections (ISO/IEC 13818-1 Annex A): polynomial
 * 0x04C11DB7, MSB first, initial value 0xFFFFFFFF, no reflection, no final XOR. Run over
 * a whole section including its CRC_32 field, a valid section gives 0.
 */

/** Built once at module load; never written after. */
const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = (c & 0x80000000) !== 0 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** The CRC of buf[start, end). */
export function crc32Mpeg2(buf: Buffer, start = 0, end = buf.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ (buf[i] as number)) & 0xff] as number)) >>> 0;
  }
  return crc >>> 0;
}
