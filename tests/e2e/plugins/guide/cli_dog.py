# The user guide, "Tools" > "Command Line Interface" > "Remote Method
# Invocation", lines 670-681: the API the "gofer rmi" examples call.
# Changed: "from gofer.decorators import *", which the guide takes for
# granted, is added; wag() is indented as bark() is (the guide indents it
# by three spaces, bark() by four: an IndentationError); print is a function.
from gofer.decorators import  *

class Dog(object):

    @remote
    def bark(self, words):
        return 'Yes master.  I will bark because that is what dogs do. "%s"' % words

    @remote
    def wag(self, n):
        for i in range(0, n):
            print('wag')
        return 'Yes master.  I will wag my tail because that is what dogs do.'
