-- wrk script for bench/run.sh: the streaming variant of post-chat.lua
-- ("stream":true unless BENCH_STREAM=0). Same knobs, same WRKSTAT line.
BENCH_STREAM_DEFAULT = "1"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
dofile(here .. "post-chat.lua")
