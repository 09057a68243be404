// Every verb of the `sandlot` command, in the order --help lists them.
import type { Verb } from './verb.js';
import { daemonVerb } from './verbs/daemon.js';
import { imagesVerb, imageVerb, pullVerb, rmiVerb } from './verbs/image.js';
import { configVerb, statusVerb, versionVerb } from './verbs/info.js';

export const VERBS: Verb[] = [daemonVerb, configVerb, versionVerb, statusVerb, pullVerb, imagesVerb, rmiVerb, imageVerb];
