export const HELP = `flowrelay - live media relay: RTMP/RTMPS/SRT in, RTMP/RTMPS/SRT out, fan-out to many players

Usage:
  flowrelay run -c FILE       run the daemon in the foreground with config FILE
  flowrelay check FILE...     validate each FILE (and load the RTMPS certificate and key it names); prints "file:line: path: message" per error, exit 2 if any is invalid
  flowrelay token [--name N] [--scope read|write]
                              print a new API token and the api.tokens line (its SHA-256) for the config
  flowrelay --version         print the version
  flowrelay --help            print this help

Options for run:
  -c, --config FILE           config file (YAML); default: config/flowrelay.yaml

Signals (run):
  SIGHUP, file change         re-read the config; flows are added, removed or restarted,
                              outputs are changed one by one; a broken file is logged and
                              the running config stays
  SIGTERM, SIGINT             stop accepting, disconnect clients, exit 0

Publish:  rtmp://HOST:1935/live/<streamKey>     (OBS: server rtmp://HOST:1935/live, key <streamKey>)
          srt://HOST:9000?streamid=#!::r=<flowId>,m=publish,s=<streamKey>   (with an srt section)
Play:     rtmp://HOST:1935/live/<playbackKey>
          srt://HOST:9000?streamid=#!::r=<flowId>,m=request,s=<playbackKey>
API (with an api section, default 127.0.0.1:8080): GET /healthz, GET /metrics,
          GET /v1/flows[/:id[/status|/outputs[/:name]]], GET /v1/config/status, GET /v1/listeners,
          GET /v1/openapi.json,
          POST /v1/flows, PATCH|DELETE /v1/flows/:id, POST /v1/flows/:id/outputs,
          PATCH|DELETE /v1/flows/:id/outputs/:name (written back into the config file),
          GET /v1/flows/:id/recordings, GET /v1/recordings[/:id[/download]], DELETE /v1/recordings/:id,
          GET|POST /v1/record-jobs, GET|DELETE /v1/record-jobs/:id,
          GET|POST /v1/tasks, GET|PATCH|DELETE /v1/tasks/:id,
          with Authorization: Bearer <token>.
Recording: recording: { mode: automatic, format: mp4|mpegts|flv } in a flow writes files to
          <storage.dir>/recordings whenever an input is live.
Failover:  two inputs in a flow are a primary and a backup (failover: { afterMs, revert }).
Cascade:   an input { type: flow, flow: <id> } reads another flow; with node: <peer> and key,
          a flow of another flowrelay node (peers:).
Through ffmpeg (ffmpeg.path): inputs of type pull (HLS, HTTP-FLV, RTSP, files), and tasks:
          scheduled pushes of a live source or a playlist to an RTMP destination.
Keys missing from the config are generated at first start, printed once, and kept in
<storage.dir>/secrets.json. See README.md for every config key.
`;
