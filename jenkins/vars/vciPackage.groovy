// Builds a run's OCI image without a daemon and pushes it (`vci package`); returns {image, digest, layers}.

def call(Map args = [:]) {
    if (!args.runId) {
        error('vciPackage: runId is required')
    }
    List words = ['package', args.runId]
    words += vciCli.flag('--push', args.push)
    words += vciCli.flag('--layout', args.layout)
    words += vciCli.flag('--base', args.base)
    words += vciCli.toggle('--insecure', args.insecure)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
