// Original file: api/sandlot.proto


export interface ImportedImage {
  'id'?: (string);
  'repo_tags'?: (string)[];
}

export interface ImportedImage__Output {
  'id': (string);
  'repo_tags': (string)[];
}
