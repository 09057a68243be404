// Original file: api/sandlot.proto

import type { LayerProgress as _sandlot_v1_LayerProgress, LayerProgress__Output as _sandlot_v1_LayerProgress__Output } from '../../sandlot/v1/LayerProgress.js';

export interface PullEvent {
  'layer'?: (_sandlot_v1_LayerProgress | null);
  /**
   * Set only on the final message: the image ID (config digest).
   */
  'image_ref'?: (string);
}

export interface PullEvent__Output {
  'layer': (_sandlot_v1_LayerProgress__Output | null);
  /**
   * Set only on the final message: the image ID (config digest).
   */
  'image_ref': (string);
}
