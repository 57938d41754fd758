-- Argo CD health for thunderbolt.io/Trial (one training Job).
-- A pruned trial was stopped on purpose by the search: that is healthy.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the training Job"
  return hs
end
local st = obj.status
if obj.metadata ~= nil and obj.metadata.generation ~= nil and
   st.observedGeneration ~= nil and st.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
if st.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Objective " .. tostring(st.objective)
elseif st.phase == "Pruned" then
  hs.status = "Healthy"
  hs.message = "Pruned by the search" .. (st.message and (": " .. st.message) or "")
elseif st.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = (st.reason or "Failed") .. (st.message and (": " .. st.message) or "")
else
  hs.status = "Progressing"
  hs.message = st.phase .. (st.jobName and (" (job " .. st.jobName .. ")") or "")
end
return hs
