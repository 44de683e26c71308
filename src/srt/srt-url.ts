/** host and port of an `srt://host:port` URL (validated by the config schema). */
export function parseSrtUrl(url: string): { host: string; port: number } {
  const m = /^srt:\/\/(\[([^\]]+)\]|[^:/?#\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m) throw new Error(`not an srt://host:port URL`);
  return { host: m[2] ?? m[1]!, port: Number(m[3]) };
}
