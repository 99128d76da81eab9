// Runs a block with the credentials vci needs bound by withCredentials: the store's keys always, the
// registry login, the cluster's kubeconfig and the signing key when asked. Returns what the block returns.

def call(Map needs = [:], Closure body) {
    List bindings = [usernamePassword(credentialsId: needs.store ?: 'vci-store',
                                      usernameVariable: 'AWS_ACCESS_KEY_ID', passwordVariable: 'AWS_SECRET_ACCESS_KEY')]
    if (needs.registry) {
        bindings << usernamePassword(credentialsId: needs.registry instanceof String ? needs.registry : 'vci-registry',
                                     usernameVariable: 'VCI_REGISTRY_USER', passwordVariable: 'VCI_REGISTRY_PASSWORD')
    }
    if (needs.cluster) {
        bindings << file(credentialsId: needs.cluster instanceof String ? needs.cluster : 'vci-kubeconfig',
                         variable: 'KUBECONFIG')
    }
    if (needs.signing) {
        bindings << file(credentialsId: needs.signing instanceof String ? needs.signing : 'vci-signing-key',
                         variable: 'VCI_SIGNING_KEY_FILE')
    }
    return withCredentials(bindings, body)
}
