// Original file: api/sandlot.proto

import type { ImportedImage as _sandlot_v1_ImportedImage, ImportedImage__Output as _sandlot_v1_ImportedImage__Output } from '../../sandlot/v1/ImportedImage.js';

export interface ImportResponse {
  'images'?: (_sandlot_v1_ImportedImage)[];
}

export interface ImportResponse__Output {
  'images': (_sandlot_v1_ImportedImage__Output)[];
}
