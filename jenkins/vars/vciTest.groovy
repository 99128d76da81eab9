// Smoke-tests a live environment with its run's examples (`vci test`); returns {environment, digest, passed, checked, failures}.

def call(Map args = [:]) {
    List words = ['test', '--env', args.environment ?: 'staging']
    words += vciCli.flag('--examples', args.examples)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
