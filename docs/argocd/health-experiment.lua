-- Argo CD health for thunderbolt.io/Experiment (a hyperparameter search).
-- Stale status (observedGeneration behind metadata.generation) is Progressing.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the Experiment"
  return hs
end
local st = obj.status
if obj.metadata ~= nil and obj.metadata.generation ~= nil and
   (st.observedGeneration == nil or st.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local t = st.trials or {}
local done = (t.succeeded or 0) + (t.failed or 0) + (t.pruned or 0)
local max = (obj.spec ~= nil and obj.spec.maxTrials) or "?"
local best = ""
if st.bestTrial ~= nil and st.bestTrial.objective ~= nil then
  best = ", best " .. tostring(st.bestTrial.objective) .. " (" .. tostring(st.bestTrial.name) .. ")"
end
if st.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Search finished: " .. done .. "/" .. max .. " trials" .. best
elseif st.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = st.message or st.reason or "Search failed"
else
  hs.status = "Progressing"
  hs.message = st.phase .. ": " .. done .. "/" .. max .. " trials finished, " ..
    (t.running or 0) .. " running" .. best
end
return hs
