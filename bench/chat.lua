-- wrk: POST a small body of one API; print one machine-readable line at the end.
-- The model name comes from BENCH_MODEL (default "bench"); BENCH_API picks the body's shape:
-- chat (default), messages (Anthropic) or responses (OpenAI Responses). The URL picks the path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local model = os.getenv("BENCH_MODEL") or "bench"
local api = os.getenv("BENCH_API") or "chat"
if api == "messages" then
  wrk.body = '{"model":"' .. model ..
    '","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
elseif api == "responses" then
  wrk.body = '{"model":"' .. model .. '","input":"Say hello in one short sentence.","max_output_tokens":32}'
else
  wrk.body = '{"model":"' .. model ..
    '","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
