// Every verb of the `sandlot` command, in the order --help lists them.
import type { Verb } from './verb.js';
import { daemonVerb } from './verbs/daemon.js';
import { imageFsInfoVerb, imagesVerb, imageVerb, inspectiVerb, pullVerb, rmiVerb } from './verbs/image.js';
import { configVerb, statusVerb, versionVerb } from './verbs/info.js';
import { logsVerb, psVerb, rmVerb, stopVerb } from './verbs/container.js';
import { inspectpVerb, inspectVerb, podsVerb, rmpVerb, stoppVerb } from './verbs/pod.js';
import { eventsVerb, statspVerb, statsVerb, updateVerb } from './verbs/resources.js';
import { runVerb } from './verbs/run.js';
import { attachVerb, execVerb, portForwardVerb } from './verbs/stream.js';

export const VERBS: Verb[] = [
  daemonVerb,
  configVerb,
  versionVerb,
  statusVerb,
  pullVerb,
  imagesVerb,
  inspectiVerb,
  imageFsInfoVerb,
  rmiVerb,
  imageVerb,
  runVerb,
  podsVerb,
  psVerb,
  logsVerb,
  inspectVerb,
  inspectpVerb,
  statsVerb,
  statspVerb,
  updateVerb,
  eventsVerb,
  stopVerb,
  rmVerb,
  stoppVerb,
  rmpVerb,
  execVerb,
  attachVerb,
  portForwardVerb,
];
