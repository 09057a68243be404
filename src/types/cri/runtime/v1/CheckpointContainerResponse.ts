// Original file: api/cri.proto


export interface CheckpointContainerResponse {
}

export interface CheckpointContainerResponse__Output {
}
