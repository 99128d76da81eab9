// Runs a declarative Jenkinsfile for real outside Jenkins: the pipeline DSL defined here, its `sh` steps
// run by /bin/sh in the workspace, shared-library vars loaded from a directory, `input` auto-approved.
//
// groovy run_pipeline.groovy JENKINSFILE VARS_DIR WORKSPACE REPORT.json
// HARNESS_PARAMS (JSON: build parameters), HARNESS_CREDENTIALS (JSON: id -> {username, password},
// {secret} or a file's {content, fileName}), HARNESS_APPROVER (who approves `input` steps; unset: every
// input is aborted), HARNESS_DURING_INPUT (a shell command run in the workspace, with the harness's own
// environment, while an `input` waits: another deploy happening meanwhile).
//
// As Declarative runs them (ModelInterpreter): the pipeline's agent, then its environment, then its
// options' wrappers (timeout) around the stages and the post conditions; per stage: options, `when`
// (`beforeAgent true` first), agent, `when`, environment, steps and the stage's post. An agent holds an
// executor and a workspace (WORKSPACE is set only there); a stage's `agent none` adds none but releases
// nothing its enclosing agent holds. `sh`, `dir`, `deleteDir` and file credentials need a workspace.
// Checks Jenkins does not make, the project's rules for an `input`: it fails when it would hold an
// executor while it waits, when it has no timeout, or when an enclosing timeout ends before its own.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.util.concurrent.TimeUnit

class PipelineError extends RuntimeException {
    PipelineError(String message) { super(message) }
}

// `env`: build-wide values (`env.X = ...`) under a stack of scoped ones (withEnv, environment directives,
// credentials, the agent's WORKSPACE); the process environment below, except what only an agent sets.
class Env extends GroovyObjectSupport {
    static final List<String> NODE_ONLY = ['WORKSPACE', 'NODE_NAME', 'EXECUTOR_NUMBER']
    private Map<String, String> globals = [:]
    private List<Map<String, String>> scopes = []

    Object getProperty(String name) {
        if (name == 'env') { return this }
        for (Map<String, String> scope : scopes.reverse()) {
            if (scope.containsKey(name)) { return scope[name] }
        }
        if (globals.containsKey(name)) { return globals[name] }
        return NODE_ONLY.contains(name) ? null : System.getenv(name)
    }
    void setProperty(String name, Object value) { globals[name] = value == null ? null : value.toString() }
    Object getAt(String name) { getProperty(name) }

    Object scoped(Map<String, String> values, Closure body) {
        scopes << new HashMap<String, String>(values)
        try { return body.call() } finally { scopes.remove(scopes.size() - 1) }
    }
    // What an `sh` step's process sees.
    Map<String, String> forProcess() {
        Map<String, String> all = new HashMap<String, String>(System.getenv())
        NODE_ONLY.each { all.remove(it) }
        ([globals] + scopes).each { Map<String, String> layer -> layer.each { k, v -> if (v == null) { all.remove(k) } else { all[k] = v } } }
        return all
    }
}

// An `environment { NAME = value }` block: each value evaluated in order, reading env and earlier names.
class EnvironmentBlock extends GroovyObjectSupport {
    Env env
    Map<String, String> values = [:]
    Object getProperty(String name) {
        if (name == 'env') { return env }
        if (values.containsKey(name)) { return values[name] }
        Object value = env.getProperty(name)
        if (value == null) { throw new MissingPropertyException(name, EnvironmentBlock) }
        return value
    }
    void setProperty(String name, Object value) { values[name] = value?.toString() }
    Map<String, String> assigned() { values }
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
    List<String> names() { seen.collect { it.name as String } }
}

// The `agent` directive: `any`, `none`, or `{ label 'NAME' }`.
class AgentDirective {
    String any = 'any'
    String none = 'none'
    String value
    void label(Object name) { value = "label '${name}'" }
    static String of(Object declared) {
        if (!(declared instanceof Closure)) { return declared.toString() }
        AgentDirective agent = new AgentDirective()
        Dsl.collect((Closure) declared, agent)
        if (agent.value == null) { throw new PipelineError('harness: unsupported agent block') }
        return agent.value
    }
}

class Stage {
    String name
    String agent = 'inherit'
    Closure steps
    Closure environment
    Directives when
    Directives options = new Directives()
    Directives post = new Directives()
    String any = 'any'
    String none = 'none'
    void agent(Object value) { agent = AgentDirective.of(value) }
    void steps(Closure body) { steps = body }
    void environment(Closure body) { environment = body }
    void when(Closure body) { when = new Directives(); Dsl.collect(body, when) }
    void options(Closure body) { Dsl.collect(body, options) }
    void post(Closure body) { Dsl.collect(body, post) }
    boolean whenBeforeAgent() { when != null && when.seen.any { it.name == 'beforeAgent' && it.args[0] } }
}

class Dsl {
    static final List<String> POST_CONDITIONS = ['always', 'success', 'failure', 'unsuccessful', 'cleanup']
    static final String NO_NODE = 'Required context class hudson.FilePath is missing. Perhaps you forgot to surround ' +
        "the code with a step that provides this, such as: node. Attempted to execute a step that requires a node " +
        "context while 'agent none' was specified. Be sure to specify your own 'node { ... }' blocks when using 'agent none'."

    File workspace
    Map<String, Object> vars = [:]
    Map params = [:]
    Env env = new Env()
    Map credentials = [:]
    String approver
    String duringInput
    Expando currentBuild = new Expando(result: null, currentResult: 'SUCCESS', description: null, number: 1)
    List<Stage> stages = []
    Directives pipelineOptions = new Directives()
    Directives postBlocks = new Directives()
    Closure environmentBlock
    List<Map> report = []
    List<Map> stagePosts = []
    List<Map> approvals = []
    List<String> masked = []
    List<String> executors = []     // what holds an executor right now, outermost first
    List<Map> timeouts = []         // the timeouts enclosing the running step, outermost first
    Stage current
    String any = 'any'
    String none = 'none'
    String agent

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
    void agent(Object value) { agent = AgentDirective.of(value) }
    void options(Closure body) { collect(body, pipelineOptions) }
    void post(Closure body) { collect(body, postBlocks) }
    void stages(Closure body) { run(body) }
    void environment(Closure body) { environmentBlock = body }
    void parameters(Closure body) {
        Directives declared = new Directives()
        collect(body, declared)
        declared.seen.each { Map p ->
            Map spec = p.args[0] as Map
            Object fallback = p.name == 'choice' ? (spec.choices as List)[0] : spec.defaultValue
            if (!params.containsKey(spec.name)) { params[spec.name] = fallback }
            if (p.name == 'choice' && !((spec.choices as List).contains(params[spec.name]))) {
                // as Jenkins's ChoiceParameterDefinition refuses a triggered build's value
                throw new IllegalArgumentException("Illegal choice for parameter ${spec.name}: ${params[spec.name]}")
            }
        }
    }
    void stage(String name, Closure body) {
        Stage s = new Stage(name: name)
        collect(body, s)
        stages << s
    }

    // --- agents, environments and timeouts --------------------------------------------------------------
    // An agent other than `none` takes an executor and a workspace for the body; `none` (or none declared
    // on a stage) keeps what encloses it.
    Object inAgent(String declared, String holder, Closure body) {
        if (declared == 'none' || declared == 'inherit') { return body.call() }
        return onNode("${holder} agent ${declared}", body)
    }
    Object onNode(String holder, Closure body) {
        executors << holder
        try { return env.scoped([WORKSPACE: workspace.path, NODE_NAME: 'harness', EXECUTOR_NUMBER: '0'], body) }
        finally { executors.remove(executors.size() - 1) }
    }
    Object node(Closure body) { onNode("node { } in stage '${current?.name}'", { run(body) }) }
    Object node(String label, Closure body) { onNode("node('${label}') in stage '${current?.name}'", { run(body) }) }
    void requireNode(String step) {
        if (!executors) { throw new PipelineError("${step}: ${NO_NODE}") }
    }

    Object inEnvironment(Closure block, Closure body) {
        if (block == null) { return body.call() }
        EnvironmentBlock values = new EnvironmentBlock(env: env)
        collect(block, values)
        return env.scoped(values.assigned(), body)
    }

    // Options' wrappers: `timeout` encloses the body; every other option is a job property, recorded only.
    Object inWrappers(Directives options, String where, Closure body) {
        Map spec = options.seen.find { it.name == 'timeout' }?.args?.getAt(0) as Map
        return spec == null ? body.call() : withTimeout(spec, where, body)
    }
    Object timeout(Map spec, Closure body) { withTimeout(spec, "a timeout step in stage '${current?.name}'", { run(body) }) }
    Object timeout(Number minutes, Closure body) { timeout([time: minutes], body) }

    Object withTimeout(Map spec, String where, Closure body) {
        Map limit = [where: where, shown: "timeout(time: ${spec.time}, unit: '${spec.unit ?: 'MINUTES'}')",
                     millis: timeoutMillis(spec), started: System.currentTimeMillis()]
        timeouts << limit
        try {
            Object result = body.call()
            if (remaining(limit) < 0) { throw new PipelineError("Timeout has been exceeded (${limit.shown} of ${where})") }
            return result
        } finally { timeouts.remove(timeouts.size() - 1) }
    }
    static long timeoutMillis(Map spec) {
        if (!(spec.time instanceof Number)) { throw new PipelineError("timeout: time must be a number, not ${spec.time}") }
        String unit = (spec.unit ?: 'MINUTES').toString()
        if (!TimeUnit.values()*.name().contains(unit)) { throw new PipelineError("No enum constant java.util.concurrent.TimeUnit.${unit}") }
        return TimeUnit.valueOf(unit).toMillis((spec.time as Number).longValue())
    }
    static long remaining(Map limit) { (limit.millis as long) - (System.currentTimeMillis() - (limit.started as long)) }

    // --- steps ----------------------------------------------------------------------------------------
    void echo(Object message) { log(message.toString()) }
    void error(Object message) { throw new PipelineError(message.toString()) }
    Object script(Closure body) { run(body) }
    Object withEnv(List<String> pairs, Closure body) {
        env.scoped(pairs.collectEntries { String p -> p.contains('=') ? [(p.split('=', 2)[0]): p.split('=', 2)[1]] : [:] }, { run(body) })
    }
    Object dir(String path, Closure body) { requireNode('dir'); run(body) }
    void deleteDir() { requireNode('deleteDir'); workspace.deleteDir() }
    void archiveArtifacts(Map spec) { requireNode('archiveArtifacts'); log("archived ${spec.artifacts}") }
    Object readJSON(Map spec) { new JsonSlurper().parseText(spec.text as String) }

    Object sh(String script) { sh(script: script) }
    Object sh(Map spec) {
        requireNode('sh')
        ProcessBuilder builder = new ProcessBuilder(['/bin/sh', '-e', '-c', spec.script as String])
        builder.directory(workspace)
        builder.environment().clear()
        builder.environment().putAll(env.forProcess())
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

    // As the credentials-binding plugin: each binding's value is masked in the log; a `file` credential
    // needs a workspace: it is written to WORKSPACE@tmp/secretFiles/UUID/NAME, its variable names that path,
    // and it is deleted after.
    Object withCredentials(List bindings, Closure body) {
        Map<String, String> bound = [:]
        List<File> written = []
        try {
            bindings.each { Map b -> bound.putAll(bind(b, credentialOf(b), written)) }
            return env.scoped(bound, { run(body) })
        } finally {
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

    Map<String, String> bind(Map b, Map secret, List<File> written) {
        if (b.kind == 'usernamePassword') {
            masked << (secret.password as String)
            return [(b.usernameVariable as String): secret.username as String, (b.passwordVariable as String): secret.password as String]
        }
        String value = secret.secret as String
        if (b.kind == 'file') {
            requireNode("withCredentials(file(credentialsId: '${b.credentialsId}'))")
            File directory = new File(workspace.path + '@tmp', "secretFiles/${UUID.randomUUID()}")
            directory.mkdirs()
            File path = new File(directory, (secret.fileName ?: 'secret') as String)
            path.text = secret.content as String
            path.setReadable(false, false); path.setReadable(true, true)
            written << path
            value = path.path
        }
        masked << value
        return [(b.variable as String): value]
    }

    Object input(Map spec) {
        String stage = current?.name
        if (executors) {
            throw new PipelineError("input in stage '${stage}' would hold an executor and its workspace while it waits " +
                "(${executors.join(', inside ')}): give the pipeline `agent none` and each working stage its own agent")
        }
        if (!timeouts) { throw new PipelineError("input in stage '${stage}' has no timeout: it could wait forever") }
        checkEnclosingTimeouts(stage)
        Map own = timeouts[-1]
        approvals << [stage: stage, message: spec.message, submitter: spec.submitter, approver: approver, timeout: own.shown]
        runDuringInput()
        if (!approver) { throw new PipelineError('Rejected by nobody: no HARNESS_APPROVER, the input was aborted') }
        return spec.submitterParameter ? approver : null
    }

    // The innermost timeout is the input's own; an outer one that ends first cuts the wait short.
    void checkEnclosingTimeouts(String stage) {
        Map own = timeouts[-1]
        timeouts.subList(0, timeouts.size() - 1).each { Map outer ->
            if (remaining(outer) < remaining(own)) {
                throw new PipelineError("input in stage '${stage}' cannot wait its ${own.shown} (${own.where}): " +
                    "${outer.shown} of ${outer.where} ends after ${describe(remaining(outer))}")
            }
        }
    }
    static String describe(long millis) {
        long minutes = Math.max(0L, millis).intdiv(60000L)
        return minutes >= 60 ? "${minutes.intdiv(60L)} h ${minutes % 60} min" : "${minutes} min"
    }

    void runDuringInput() {
        if (!duringInput) { return }
        log("[harness] while the input waits: ${duringInput}")
        ProcessBuilder builder = new ProcessBuilder(['/bin/sh', '-e', '-c', duringInput])
        builder.directory(workspace)
        builder.redirectErrorStream(true)
        Process process = builder.start()
        process.inputStream.eachLine { log("[harness] ${it}") }
        int code = process.waitFor()
        if (code != 0) { throw new PipelineError("harness: HARNESS_DURING_INPUT exited ${code}") }
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
        if (agent == null) { throw new PipelineError("Missing required section 'agent'") }
        try {
            inAgent(agent, "the pipeline's") {
                inEnvironment(environmentBlock) {
                    inWrappers(pipelineOptions, "the pipeline's options") {
                        stages.each { executeStage(it) }
                        current = null
                        runPost(postBlocks, false, null)
                    }
                }
            }
        } catch (Throwable failure) {
            currentBuild.currentResult = 'FAILURE'
            report << [pipeline: 'error', error: failure.toString()]
            log("ERROR: ${failure.message}")
        }
        currentBuild.result = currentBuild.currentResult
    }

    void executeStage(Stage s) {
        if (currentBuild.currentResult != 'SUCCESS') { report << [stage: s.name, status: 'skipped']; return }
        current = s
        String status = 'skipped'
        try {
            inWrappers(s.options, "the options of stage '${s.name}'") {
                if (s.whenBeforeAgent() && !whenHolds(s.when)) { return }
                inAgent(s.agent, "stage '${s.name}'") {
                    if (!s.whenBeforeAgent() && !whenHolds(s.when)) { return }
                    log("[Pipeline] stage ${s.name}")
                    inEnvironment(s.environment) { runStageBody(s) }
                    status = 'success'
                }
            }
            report << [stage: s.name, status: status]
        } catch (Throwable failure) {
            currentBuild.currentResult = 'FAILURE'
            report << [stage: s.name, status: 'failure', error: failure.toString()]
            log("ERROR: ${failure.message}")
        }
    }

    // The steps, then the stage's post conditions (in the stage's agent); the first error fails the stage.
    void runStageBody(Stage s) {
        Throwable stageError = null
        try { run(s.steps) } catch (Throwable failure) { stageError = failure }
        Throwable postError = runPost(s.post, stageError != null, s.name)
        if (stageError ?: postError) { throw stageError ?: postError }
    }

    boolean whenHolds(Directives conditions) {
        if (conditions == null) { return true }
        return conditions.seen.findAll { it.name != 'beforeAgent' }.every { Map c ->
            if (c.name != 'expression') { throw new PipelineError("harness: unsupported when condition ${c.name}") }
            run(conditions.blocks['expression'])
        }
    }

    // Post conditions in Declarative's order, each judged by the result at its turn (a stage's failure
    // counts for its own post); a failing one fails the build. Returns the first error.
    Throwable runPost(Directives blocks, boolean stageFailed, String stageName) {
        Throwable first = null
        (blocks.blocks.keySet() - POST_CONDITIONS).each { throw new PipelineError("harness: unsupported post condition ${it}") }
        POST_CONDITIONS.findAll { blocks.blocks[it] != null }.each { String condition ->
            String result = stageFailed ? 'FAILURE' : currentBuild.currentResult
            Map<String, Boolean> holds = [always: true, success: result == 'SUCCESS', failure: result == 'FAILURE',
                                          unsuccessful: result != 'SUCCESS', cleanup: true]
            if (!holds[condition]) { return }
            Map entry = stageName ? [stage: stageName, post: condition] : [post: condition]
            List<Map> into = stageName ? stagePosts : report
            try { run(blocks.blocks[condition]); into << (entry + [status: 'success']) }
            catch (Throwable failure) {
                currentBuild.currentResult = 'FAILURE'
                first = first ?: failure
                into << (entry + [status: 'failure', error: failure.toString()])
                log("ERROR: ${failure.message}")
            }
        }
        return first
    }
}

Object loadVar(File file, Binding binding) {
    Script script = new GroovyShell(binding).parse(file)
    return script
}

def (jenkinsfile, varsDir, workspacePath, reportPath) = args as List
Dsl dsl = new Dsl(workspace: new File(workspacePath as String))
dsl.env.BUILD_URL = 'http://jenkins.example.com/job/vci/1/'
dsl.env.JOB_NAME = 'vci'
dsl.params.putAll(new JsonSlurper().parseText(System.getenv('HARNESS_PARAMS') ?: '{}') as Map)
dsl.credentials = new JsonSlurper().parseText(System.getenv('HARNESS_CREDENTIALS') ?: '{}') as Map
dsl.approver = System.getenv('HARNESS_APPROVER')
dsl.duringInput = System.getenv('HARNESS_DURING_INPUT')

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
               stagePosts: dsl.stagePosts, approvals: dsl.approvals, params: dsl.params, agent: dsl.agent,
               options: dsl.pipelineOptions.names(),
               stageOptions: dsl.stages.collectEntries { [(it.name): it.options.names()] },
               stageAgents: dsl.stages.collectEntries { [(it.name): it.agent] }]
new File(reportPath as String).text = JsonOutput.toJson(summary)
System.exit(dsl.currentBuild.result == 'SUCCESS' ? 0 : 1)
