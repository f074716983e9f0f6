-- wrk: POST the GraphQL bodies of BODIES_FILE (one JSON body a line) round-robin, each
-- thread starting at its own line. Counts the answers that are not 200 and those whose
-- body carries GraphQL "errors", and writes "answers non-200 with-errors" to COUNTS_FILE
-- (if set) when done.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

local bodies = {}
local index = 0
-- Globals, so that done() can read them from each thread.
answers, not_ok, with_errors = 0, 0, 0

function init(args)
  for line in io.lines(os.getenv("BODIES_FILE")) do
    if line ~= "" then bodies[#bodies + 1] = line end
  end
  index = tid % #bodies
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, bodies[index])
end

function response(status, headers, body)
  answers = answers + 1
  if status ~= 200 then not_ok = not_ok + 1 end
  if body and body:find('"errors"', 1, true) then with_errors = with_errors + 1 end
end

function done(summary, latency, requests)
  local path = os.getenv("COUNTS_FILE")
  if not path then return end
  local total = {0, 0, 0}
  for _, thread in ipairs(threads) do
    total[1] = total[1] + thread:get("answers")
    total[2] = total[2] + thread:get("not_ok")
    total[3] = total[3] + thread:get("with_errors")
  end
  local out = assert(io.open(path, "w"))
  out:write(string.format("%d %d %d\n", total[1], total[2], total[3]))
  out:close()
end
