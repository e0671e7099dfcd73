# The user guide, "Plugin Extension" > "Extending": plugin dog, extending animals by its descriptor.
from gofer.decorators import *


class Puppy:
   @remote
   def yip(self):
       return 'yip'
