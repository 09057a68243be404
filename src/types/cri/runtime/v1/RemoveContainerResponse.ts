// Original file: api/cri.proto


export interface RemoveContainerResponse {
}

export interface RemoveContainerResponse__Output {
}
