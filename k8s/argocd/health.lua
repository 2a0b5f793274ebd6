-- Argo CD health check for celeris.dev/TradingSystem
-- (argocd-cm: resource.customizations.health.celeris.dev_TradingSystem; see argocd-cm.yaml beside this file).
--
-- It reads the operator's status contract (docs/deployment.md, "GitOps"): metadata.generation,
-- status.observedGeneration, status.conditions (Ready, Progressing, Degraded, Stalled, Halted) and
-- spec.halted. Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a reduced os
-- library: no string library, so no string.* and no ("..."):method() calls. Tested by
-- tests/operator/test_gitops_health.py.
hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- A condition that states its own observedGeneration speaks for that generation only.
local function current(c, generation)
  return c ~= nil and (generation == nil or c.observedGeneration == nil or c.observedGeneration >= generation)
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
local conditions = nil
if status ~= nil then
  conditions = status.conditions
end
local stalled = condition(conditions, "Stalled")
local degraded = condition(conditions, "Degraded")
local halted = condition(conditions, "Halted")
local ready = condition(conditions, "Ready")
local progressing = condition(conditions, "Progressing")

local observed = nil
if status ~= nil then
  observed = status.observedGeneration
end
local behind = status == nil or observed == nil or (generation ~= nil and observed < generation)

if isTrue(stalled) and (not behind or (generation ~= nil and stalled.observedGeneration == generation)) then
  -- Needs a person: an aborted rollout (new approval, new revision or celeris.dev/retry) or a refused
  -- configuration. Counted even while observedGeneration lags if the condition names this generation,
  -- since a refused generation is never "fully applied".
  hs.status = "Degraded"
  hs.message = messageOf(stalled, "Stalled")
  return hs
end

if behind then
  hs.status = "Progressing"
  if status == nil or observed == nil then
    hs.message = "Waiting for the operator to report a status"
  else
    hs.message = "Waiting for the operator to apply generation " .. tostring(generation) ..
      " (observed " .. tostring(observed) .. ")"
  end
  return hs
end

if isTrue(degraded) and current(degraded, generation) then
  hs.status = "Degraded"
  hs.message = messageOf(degraded, "Degraded")
  return hs
end

if (obj.spec ~= nil and obj.spec.halted == true) or isTrue(halted) then
  hs.status = "Suspended"
  if isTrue(halted) then
    hs.message = messageOf(halted, "Trading is halted")
  else
    hs.message = "Halting (spec.halted): " .. messageOf(halted, "waiting for the components to report halted")
  end
  return hs
end

if isTrue(ready) and current(ready, generation) then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = messageOf(progressing, messageOf(ready, "Waiting for the TradingSystem to become Ready"))
return hs
