-- Argo CD health for thunderbolt.io/ModelDeployment (an ONNX model behind the V2 API).
-- A canary in flight, or a generation not yet observed, is Progressing.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to deploy the model"
  return hs
end
local st = obj.status
if obj.metadata ~= nil and obj.metadata.generation ~= nil and
   (st.observedGeneration == nil or st.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local rev = ""
if st.currentRevision ~= nil and st.currentRevision.number ~= nil then
  rev = "revision " .. tostring(st.currentRevision.number)
end
if st.phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = st.message or st.reason or "Degraded"
elseif st.phase == "Available" and st.canary == nil then
  hs.status = "Healthy"
  hs.message = "Serving " .. rev .. (st.endpoint and (" at " .. st.endpoint) or "")
elseif st.canary ~= nil then
  hs.status = "Progressing"
  hs.message = "Canary revision " .. tostring(st.canary.revision) .. " at " ..
    tostring(st.canary.weight) .. "% (serving " .. rev .. ")"
else
  hs.status = "Progressing"
  hs.message = st.message or (st.phase .. " " .. rev)
end
return hs
