// Original file: api/cri.proto


export interface StopPodSandboxResponse {
}

export interface StopPodSandboxResponse__Output {
}
