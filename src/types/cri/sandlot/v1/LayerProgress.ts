// Original file: api/sandlot.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Progress of one layer (or the config blob). bytes counts compressed bytes verified
 * into the content store so far; total is the size the manifest declares.
 */
export interface LayerProgress {
  'digest'?: (string);
  'bytes'?: (number | string | Long);
  'total'?: (number | string | Long);
  /**
   * "downloading", "unpacking" or "done".
   */
  'phase'?: (string);
}

/**
 * Progress of one layer (or the config blob). bytes counts compressed bytes verified
 * into the content store so far; total is the size the manifest declares.
 */
export interface LayerProgress__Output {
  'digest': (string);
  'bytes': (string);
  'total': (string);
  /**
   * "downloading", "unpacking" or "done".
   */
  'phase': (string);
}
