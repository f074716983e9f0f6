-- wrk: POST one signed callback per request from EVENTS_FILE (one JSON per line);
-- each thread takes its own slice, so that threads do not send each other's events.
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local lines = {}
local index = 0

function init(args)
  local all = {}
  for line in io.lines(os.getenv("EVENTS_FILE")) do all[#all + 1] = line end
  local count = tonumber(os.getenv("THREADS"))
  for i = tid + 1, #all, count do lines[#lines + 1] = all[i] end
end

function request()
  index = index % #lines + 1
  return wrk.format("POST", "/callbacks/tencent", {["Content-Type"] = "application/json"},
                    lines[index])
end
