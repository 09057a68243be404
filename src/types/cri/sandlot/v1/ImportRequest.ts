// Original file: api/sandlot.proto


export interface ImportRequest {
  /**
   * Absolute path, read by the daemon.
   */
  'path'?: (string);
  /**
   * Reference to tag a single-image archive with when it names none.
   */
  'name'?: (string);
}

export interface ImportRequest__Output {
  /**
   * Absolute path, read by the daemon.
   */
  'path': (string);
  /**
   * Reference to tag a single-image archive with when it names none.
   */
  'name': (string);
}
