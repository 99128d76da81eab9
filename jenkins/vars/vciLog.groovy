// Logs the model in the workspace as a run (`vci log`) and returns {run_id, version, artifacts, ...}.

def call(Map args = [:]) {
    if (!args.model) {
        error('vciLog: model is required (FILE.py:Class)')
    }
    List words = ['log', '--model', args.model]
    (args.artifacts ?: []).each { words += ['--artifact', it] }
    words += vciCli.flag('--requirements', args.requirements)
    words += vciCli.flag('--examples', args.examples)
    words += vciCli.flag('--project', args.project)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
