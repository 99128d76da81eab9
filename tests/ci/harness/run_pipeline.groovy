// Runs a declarative Jenkinsfile for real outside Jenkins: the pipeline DSL defined here, its `sh` steps
// run by /bin/sh in the workspace, shared-library vars loaded from a directory, `input` auto-approved.
//
// groovy run_pipeline.groovy JENKINSFILE VARS_DIR WORKSPACE REPORT.json
// HARNESS_PARAMS (JSON: build parameters), HARNESS_CREDENTIALS (JSON: id -> {username, password},
// {secret} or a file's {content, fileName}), HARNESS_APPROVER (who approves `input` steps; unset: every input is aborted).
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class PipelineError extends RuntimeException {
    PipelineError(String message) { super(message) }
}

class Env extends GroovyObjectSupport {
    private Map<String, String> values = [:]
    Object getProperty(String name) {
        if (name == 'env') { return this }
        return values.containsKey(name) ? values[name] : System.getenv(name)
    }
    void setProperty(String name, Object value) { values[name] = value == null ? null : value.toString() }
    Object getAt(String name) { getProperty(name) }
    Map<String, String> snapshot() { new HashMap<String, String>(values) }
}

// Collects the directives of one block (`options`, `parameters`, `when`, `post`, ...) as name -> arguments.
class Directives {
    List<Map> seen = []
    Map<String, Closure> blocks = [:]
    Object methodMissing(String name, Object args) {
        Object[] list = args as Object[]
        if (list.length > 0 && list[-1] instanceof Closure) {
            blocks[name] = (Closure) list[-1]
        }
        Map entry = [name: name, args: list.findAll { !(it instanceof Closure) }]
        seen << entry
        return entry
    }
}

class Stage {
    String name
    String agent = 'inherit'
    Closure steps
    Closure when
    Directives options = new Directives()
    String any = 'any'
    String none = 'none'
    void agent(Object value) { agent = value.toString() }
    void steps(Closure body) { steps = body }
    void when(Closure body) { when = body }
    void options(Closure body) { Dsl.collect(body, options) }
}

class Dsl {
    File workspace
    Map<String, Object> vars = [:]
    Map params = [:]
    Env env = new Env()
    Map credentials = [:]
    String approver
    Expando currentBuild = new Expando(result: null, currentResult: 'SUCCESS', description: null, number: 1)
    List<Stage> stages = []
    Directives pipelineOptions = new Directives()
    Directives postBlocks = new Directives()
    List<Map> report = []
    List<Map> approvals = []
    List<String> masked = []
    Stage current
    String any = 'any'
    String none = 'none'
    String agent = 'none'

    static void collect(Closure body, Object into) {
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body.delegate = into
        body.call()
    }

    Object run(Closure body) {
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body.delegate = this
        return body.call()
    }

    // --- the declarative skeleton -----------------------------------------------------------------
    void pipeline(Closure body) { run(body) }
    void agent(Object value) { agent = value.toString() }
    void options(Closure body) { collect(body, pipelineOptions) }
    void post(Closure body) { collect(body, postBlocks) }
    void stages(Closure body) { run(body) }
    void parameters(Closure body) {
        Directives declared = new Directives()
        collect(body, declared)
        declared.seen.each { Map p ->
            Map spec = p.args[0] as Map
            Object fallback = p.name == 'choice' ? (spec.choices as List)[0] : spec.defaultValue
            if (!params.containsKey(spec.name)) { params[spec.name] = fallback }
        }
    }
    void environment(Closure body) {
        collect(body, env)
    }
    void stage(String name, Closure body) {
        Stage s = new Stage(name: name)
        collect(body, s)
        stages << s
    }

    // --- steps ----------------------------------------------------------------------------------------
    void echo(Object message) { log(message.toString()) }
    void error(Object message) { throw new PipelineError(message.toString()) }
    Object script(Closure body) { run(body) }
    Object timeout(Map spec, Closure body) { run(body) }
    Object dir(String path, Closure body) { run(body) }
    void deleteDir() { workspace.deleteDir() }
    void archiveArtifacts(Map spec) { log("archived ${spec.artifacts}") }
    Object readJSON(Map spec) { new JsonSlurper().parseText(spec.text as String) }

    Object sh(String script) { sh(script: script) }
    Object sh(Map spec) {
        Map<String, String> environment = new HashMap<String, String>(System.getenv())
        env.snapshot().each { k, v -> if (v != null) { environment[k] = v } }
        environment['WORKSPACE'] = workspace.path
        ProcessBuilder builder = new ProcessBuilder(['/bin/sh', '-e', '-c', spec.script as String])
        builder.directory(workspace)
        builder.environment().clear()
        builder.environment().putAll(environment)
        builder.redirectError(ProcessBuilder.Redirect.INHERIT)
        log("+ ${spec.script}")
        Process process = builder.start()
        String stdout = process.inputStream.getText('UTF-8')
        int code = process.waitFor()
        if (!spec.returnStdout) { stdout.eachLine { log(it) } }
        if (spec.returnStatus) { return code }
        if (code != 0) { throw new PipelineError("script returned exit code ${code}") }
        return spec.returnStdout ? stdout : null
    }

    Map usernamePassword(Map spec) { [kind: 'usernamePassword'] + spec }
    Map string(Map spec) { [kind: 'string'] + spec }
    Map file(Map spec) { [kind: 'file'] + spec }

    // As the credentials-binding plugin: each binding's value is masked in the log; a `file` credential is
    // written to WORKSPACE@tmp/secretFiles/UUID/NAME, its variable names that path, and it is deleted after.
    Object withCredentials(List bindings, Closure body) {
        Map<String, String> saved = env.snapshot()
        List<String> bound = []
        List<File> written = []
        try {
            bindings.each { Map b -> bound.addAll(bind(b, credentialOf(b), written)) }
            return run(body)
        } finally {
            bound.each { env.setProperty(it as String, saved[it]) }
            written.each { it.parentFile.deleteDir() }
        }
    }

    Map credentialOf(Map binding) {
        Map secret = credentials[binding.credentialsId] as Map
        if (secret == null) { throw new PipelineError("Could not find credentials entry with ID '${binding.credentialsId}'") }
        String kind = secret.containsKey('content') ? 'file' : secret.containsKey('secret') ? 'string' : 'usernamePassword'
        if (kind != binding.kind) {
            throw new PipelineError("Credentials '${binding.credentialsId}' is of type '${kind}' where '${binding.kind}' was expected")
        }
        return secret
    }

    List<String> bind(Map b, Map secret, List<File> written) {
        if (b.kind == 'usernamePassword') {
            env.setProperty(b.usernameVariable as String, secret.username)
            env.setProperty(b.passwordVariable as String, secret.password)
            masked << (secret.password as String)
            return [b.usernameVariable as String, b.passwordVariable as String]
        }
        String value = secret.secret as String
        if (b.kind == 'file') {
            File directory = new File(workspace.path + '@tmp', "secretFiles/${UUID.randomUUID()}")
            directory.mkdirs()
            File path = new File(directory, (secret.fileName ?: 'secret') as String)
            path.text = secret.content as String
            path.setReadable(false, false); path.setReadable(true, true)
            written << path
            value = path.path
        }
        env.setProperty(b.variable as String, value)
        masked << value
        return [b.variable as String]
    }

    Object input(Map spec) {
        if (current == null || current.agent != 'none') {
            throw new PipelineError("input in stage '${current?.name}' would hold an executor: give the stage `agent none`")
        }
        if (!current.options.seen.any { it.name == 'timeout' }) {
            throw new PipelineError("input in stage '${current.name}' has no timeout: it could wait forever")
        }
        approvals << [stage: current.name, message: spec.message, submitter: spec.submitter, approver: approver]
        if (!approver) { throw new PipelineError('Rejected by nobody: no HARNESS_APPROVER, the input was aborted') }
        return spec.submitterParameter ? approver : null
    }

    // Shared-library vars: `vciDeploy(...)` calls the var's `call`.
    Object methodMissing(String name, Object args) {
        if (vars.containsKey(name)) { return vars[name].invokeMethod('call', args) }
        throw new MissingMethodException(name, Dsl, args as Object[])
    }
    Object propertyMissing(String name) {
        if (vars.containsKey(name)) { return vars[name] }
        throw new MissingPropertyException(name, Dsl)
    }

    void log(String line) {
        String shown = line
        masked.findAll { it }.each { shown = shown.replace(it, '****') }
        println shown
    }

    // --- running what was declared --------------------------------------------------------------------
    void execute() {
        for (Stage s : stages) {
            if (currentBuild.currentResult != 'SUCCESS') { report << [stage: s.name, status: 'skipped']; continue }
            current = s
            if (s.when != null && !whenHolds(s.when)) { report << [stage: s.name, status: 'skipped']; continue }
            log("[Pipeline] stage ${s.name}")
            try {
                run(s.steps)
                report << [stage: s.name, status: 'success']
            } catch (Throwable failure) {
                currentBuild.currentResult = 'FAILURE'
                report << [stage: s.name, status: 'failure', error: failure.toString()]
                log("ERROR: ${failure.message}")
            }
        }
        current = null
        currentBuild.result = currentBuild.currentResult
        runPost()
    }

    boolean whenHolds(Closure body) {
        Directives conditions = new Directives()
        collect(body, conditions)
        return conditions.seen.every { Map c ->
            if (c.name != 'expression') { throw new PipelineError("harness: unsupported when condition ${c.name}") }
            run(conditions.blocks['expression'])
        }
    }

    void runPost() {
        String result = currentBuild.result
        List<String> order = ['always', result == 'SUCCESS' ? 'success' : result.toLowerCase(), 'cleanup']
        order.each { String condition ->
            Closure block = postBlocks.blocks[condition]
            if (block == null) { return }
            try { run(block); report << [post: condition, status: 'success'] }
            catch (Throwable failure) { report << [post: condition, status: 'failure', error: failure.toString()] }
        }
    }
}

Object loadVar(File file, Binding binding) {
    Script script = new GroovyShell(binding).parse(file)
    return script
}

def (jenkinsfile, varsDir, workspacePath, reportPath) = args as List
Dsl dsl = new Dsl(workspace: new File(workspacePath as String))
dsl.env.WORKSPACE = dsl.workspace.path
dsl.env.BUILD_URL = 'http://jenkins.example.com/job/vci/1/'
dsl.env.JOB_NAME = 'vci'
dsl.params.putAll(new JsonSlurper().parseText(System.getenv('HARNESS_PARAMS') ?: '{}') as Map)
dsl.credentials = new JsonSlurper().parseText(System.getenv('HARNESS_CREDENTIALS') ?: '{}') as Map
dsl.approver = System.getenv('HARNESS_APPROVER')

// The vars' scripts see the steps (sh, readJSON, error, echo, env) and each other, as in Jenkins.
Binding varBinding = new Binding()
[sh: dsl.&sh, readJSON: dsl.&readJSON, error: dsl.&error, echo: dsl.&echo].each { k, v -> varBinding.setVariable(k, v) }
varBinding.setVariable('env', dsl.env)
varBinding.setVariable('params', dsl.params)
new File(varsDir as String).listFiles().findAll { it.name.endsWith('.groovy') }.sort().each { File f ->
    String name = f.name - '.groovy'
    Script script = loadVar(f, varBinding)
    dsl.vars[name] = script
    varBinding.setVariable(name, script)
}
// Inside a var, `vciCli(...)` must call the var: a Script is not a Closure, so route it by metaclass.
dsl.vars.each { String name, Object script ->
    script.metaClass.methodMissing = { String missing, Object margs ->
        if (dsl.vars.containsKey(missing)) { return dsl.vars[missing].invokeMethod('call', margs) }
        return dsl.invokeMethod(missing, margs)
    }
}

Binding binding = new Binding()
binding.setVariable('pipeline', { Closure body -> dsl.pipeline(body) })
binding.setVariable('library', { Object name -> dsl.log("library ${name} (vars from ${varsDir})") })
binding.setVariable('env', dsl.env)
binding.setVariable('params', dsl.params)
binding.setVariable('currentBuild', dsl.currentBuild)
new GroovyShell(binding).evaluate(new File(jenkinsfile as String))
dsl.execute()

Map summary = [result: dsl.currentBuild.result, description: dsl.currentBuild.description, stages: dsl.report,
               approvals: dsl.approvals, params: dsl.params,
               options: dsl.pipelineOptions.seen.collect { it.name },
               stageOptions: dsl.stages.collectEntries { [(it.name): it.options.seen.collect { o -> o.name }] },
               stageAgents: dsl.stages.collectEntries { [(it.name): it.agent] }]
new File(reportPath as String).text = JsonOutput.toJson(summary)
System.exit(dsl.currentBuild.result == 'SUCCESS' ? 0 : 1)
