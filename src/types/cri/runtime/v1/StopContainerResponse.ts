// Original file: api/cri.proto


export interface StopContainerResponse {
}

export interface StopContainerResponse__Output {
}
