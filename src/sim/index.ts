export { enumerateTCommit, enumerateTwoPhase, twoPhaseStep, type TwoPhaseState } from './abstract-models.js';
export { runCampaign, shrinkScenario, shrinkSeed, type CampaignOptions, type CampaignResult, type CampaignTotals } from './campaign.js';
export { PROPERTIES, type PropertyId, type Violation } from './checker.js';
export { isMutantName, MUTANT_NAMES, MUTANTS, type Mutant, type MutantName } from './mutants.js';
export {
  decodeScenario,
  describeScenario,
  encodeScenario,
  PROFILE_NAMES,
  PROFILES,
  scenarioArbitrary,
  scenarioForSeed,
  type ProfileName,
  type Scenario,
  type ScenarioProfile,
} from './scenario.js';
export { DEFAULT_SIM_CONFIG, type SimConfig } from './sim-options.js';
export { runScenario, type RunOptions, type RunResult } from './simulation.js';
export { formatTrace, type TraceLine } from './trace.js';
